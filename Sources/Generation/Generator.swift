// Batched decoding loops (greedy, sampling, beam search) with the semantics of Hugging Face transformers'
// `generate` for a decoder-only model called with inputs_embeds: lengths count generated tokens only.

import Foundation
import Tensors

/// The tokens generated for one prompt: up to and including end-of-sequence when it was produced.
public struct GeneratedSequence: Sendable, Equatable {
    public var tokens: [Int]
    /// The beam score (sum of log-probabilities over length^penalty) for beam search; the sum of log-probabilities
    /// of the chosen tokens otherwise.
    public var score: Float
}

/// Runs decoding loops over a `TokenDecoder`.
public struct Generator {
    public init() {}

    /// Generates for `batch` left-padded prompts at once.
    ///
    /// - Parameter streams: when sampling, each row's own stream of random numbers (`parameters.seed` mixed with
    ///   it), so that a row's sample does not depend on the rows beside it; nil gives row i stream i.
    public func generate<Model: TokenDecoder>(
        _ model: inout Model, embeddings: [Float], length: Int, valid: [Bool], batch: Int,
        parameters: GenerationParameters, streams: [UInt64]? = nil
    ) throws -> [GeneratedSequence] {
        try parameters.validate()
        if parameters.beamCount > 1 {
            return beamSearch(
                &model, embeddings: embeddings, length: length, valid: valid, batch: batch, parameters: parameters)
        }
        let streams = streams ?? (0..<batch).map(UInt64.init)
        precondition(streams.count == batch, "one random stream per row")
        return sample(
            &model, embeddings: embeddings, length: length, valid: valid, batch: batch, parameters: parameters,
            streams: streams)
    }

    /// Greedy decoding, or sampling when `parameters.temperature` is set.
    func sample<Model: TokenDecoder>(
        _ model: inout Model, embeddings: [Float], length: Int, valid: [Bool], batch: Int,
        parameters: GenerationParameters, streams: [UInt64]
    ) -> [GeneratedSequence] {
        let vocabulary = model.vocabularySize, eos = model.eosTokenID
        // One generator per row, from the seed and the row's stream: SplitMix64's output function decorrelates them.
        var randoms = streams.map { stream in
            var mixer = SplitMix64(seed: parameters.seed ^ (stream &* 0x9E37_79B9_7F4A_7C15))
            return SplitMix64(seed: mixer.next())
        }
        var logits = model.prefill(embeddings, length: length, valid: valid, batch: batch)
        var sequences = [GeneratedSequence](repeating: GeneratedSequence(tokens: [], score: 0), count: batch)
        var finished = [Bool](repeating: false, count: batch)
        for step in 0..<parameters.maxNewTokens {
            var next = [Int](repeating: eos, count: batch)
            for row in 0..<batch where !finished[row] {
                var rowLogits = Array(logits[(row * vocabulary)..<((row + 1) * vocabulary)])
                if step < parameters.minNewTokens { rowLogits[eos] = -.infinity }
                let token =
                    parameters.isSampling
                    ? Sampler.draw(rowLogits, parameters: parameters, random: &randoms[row]) : Sampler.argmax(rowLogits)
                next[row] = token
                sequences[row].tokens.append(token)
                sequences[row].score += RowMath.logSoftmax(rowLogits)[token]
                if token == eos { finished[row] = true }
            }
            if finished.allSatisfy({ $0 }) || step + 1 == parameters.maxNewTokens { break }
            logits = model.step(next)
        }
        return sequences
    }
}
