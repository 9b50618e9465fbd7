// Sampling is reproducible from its seed and reduces to greedy decoding at top_k = 1; parameters are checked.

import Tensors
import Testing

@testable import Generation

/// Logits that depend only on the last token, so every decoding rule can be checked by hand.
enum TableModel {
    static let vocabulary = 6
    static let eos = 5

    static func logits(after token: Int) -> [Float] {
        (0..<vocabulary).map { Float((($0 + 1) * (token + 3)) % 7) / 2 }
    }

    /// Runs one request's decoding rule to the end, as the scheduler feeds it (the prompt's logits first, as if
    /// its last token were 0).
    static func generate(_ parameters: GenerationParameters, stream: UInt64) -> [Int] {
        var decoding = parameters.decoding(vocabulary: vocabulary, eos: eos, stream: stream)
        var logits = logits(after: 0)
        while true {
            switch decoding.advance(logits[...]) {
            case let .finished(sequence): return sequence.tokens
            case let .next(tokens, _): logits = tokens.flatMap { Self.logits(after: $0) }
            }
        }
    }
}

@Suite struct SamplingTests {
    func run(_ parameters: GenerationParameters, rows: Int = 2) throws -> [[Int]] {
        try parameters.validate()
        return (0..<rows).map { TableModel.generate(parameters, stream: UInt64($0)) }
    }

    @Test func theSameSeedGivesTheSameTokens() throws {
        var parameters = GenerationParameters()
        parameters.temperature = 1.5
        parameters.maxNewTokens = 12
        parameters.seed = 42
        #expect(try run(parameters) == (try run(parameters)))
        var other = parameters
        other.seed = 43
        let differs = try (0..<8).contains { seed in
            other.seed = UInt64(100 + seed)
            return try run(other) != run(parameters)
        }
        #expect(differs, "different seeds should give different samples")
    }

    @Test func aRequestSamplesFromItsOwnStream() throws {
        var parameters = GenerationParameters()
        parameters.temperature = 1.2
        parameters.maxNewTokens = 16
        parameters.seed = 7
        let streams = [11, 12, 13].map { TableModel.generate(parameters, stream: $0) }
        #expect(TableModel.generate(parameters, stream: 12) == streams[1])
        #expect(Set(streams).count > 1, "different streams should sample differently")
    }

    /// With a single largest logit, top_k 1 leaves only it.
    @Test func topKOfOneIsGreedy() throws {
        var parameters = GenerationParameters()
        parameters.temperature = 0.7
        parameters.topK = 1
        var random = SplitMix64(seed: 9)
        for _ in 0..<50 {
            let logits = (0..<12).map { _ in Float(random.next() >> 40) / Float(1 << 20) }
            #expect(Sampler.draw(logits, parameters: parameters, random: &random) == Sampler.argmax(logits))
        }
    }

    /// transformers' top-k keeps every token tied with the k-th largest logit, so with top_k 1 and two equal
    /// largest logits both are drawn.
    @Test func topKKeepsTokensTiedWithTheKth() throws {
        var parameters = GenerationParameters()
        parameters.temperature = 1
        parameters.topK = 1
        var random = SplitMix64(seed: 5)
        let drawn = Set((0..<64).map { _ in Sampler.draw([0, 3, 3, 1], parameters: parameters, random: &random) })
        #expect(drawn == [1, 2])
        parameters.topK = 2
        let wider = Set((0..<64).map { _ in Sampler.draw([0, 3, 2, 2], parameters: parameters, random: &random) })
        #expect(wider == [1, 2, 3])
    }

    /// A valid temperature so small that the logits overflow once divided by it (to +inf, or all to -inf) is the
    /// greedy choice, not whichever overflowed token comes first.
    @Test func aVanishingTemperatureIsGreedy() throws {
        var parameters = GenerationParameters()
        parameters.temperature = 0x1p-130  // about 7e-40: valid, and small enough to overflow
        try parameters.validate()
        var random = SplitMix64(seed: 3)
        for logits: [Float] in [[5, 6, 1], [-5, -4, -6], [0, 0.5, 0.25]] {
            #expect(Sampler.draw(logits, parameters: parameters, random: &random) == 1, "\(logits)")
        }
    }

    @Test func minNewTokensHoldsBackEndOfSequence() throws {
        var parameters = GenerationParameters()
        parameters.maxNewTokens = 8
        parameters.minNewTokens = 8
        #expect(try run(parameters).allSatisfy { $0.count == 8 && !$0.dropLast().contains(5) })
    }

    @Test(arguments: ["max_new_tokens", "num_beams", "top_p", "temperature", "min_new_tokens"])
    func badParametersAreRefused(_ field: String) {
        var parameters = GenerationParameters()
        switch field {
        case "max_new_tokens": parameters.maxNewTokens = 0
        case "num_beams": parameters.beamCount = 0
        case "top_p": parameters.topP = 0
        case "temperature": parameters.temperature = -1
        default: parameters.minNewTokens = 100
        }
        #expect(throws: GenerationError.self) { try parameters.validate() }
    }
}
