// Choosing tokens one step at a time for one request (greedy, sampled, or a beam group), with the semantics of
// Hugging Face transformers' `generate` for a decoder-only model called with inputs_embeds: lengths count generated
// tokens only. The scheduler feeds each request its own logits, so a request's tokens never depend on its neighbours.

import Foundation
import Tensors

/// The tokens generated for one prompt: up to and including end-of-sequence when it was produced.
public struct GeneratedSequence: Sendable, Equatable {
    public var tokens: [Int]
    /// The beam score (sum of log-probabilities over length^penalty) for beam search; the sum of log-probabilities
    /// of the chosen tokens otherwise.
    public var score: Float
}

/// What a request does after seeing the logits of its rows.
public enum DecodingStep: Sendable, Equatable {
    /// Feed `tokens` (one per row) next, after row `i` has taken over what row `sources[i]` held.
    case next(tokens: [Int], sources: [Int])
    case finished(GeneratedSequence)
}

/// One request's decoding rule, advanced by the logits of its rows after each step.
public protocol Decoding: Sendable {
    /// Rows the request decodes in each step after the first (beams); the first step has one row, the prompt's.
    var rows: Int { get }
    /// Takes `[rows, vocabulary]` logits (one row for the first call) and says what comes next.
    mutating func advance(_ logits: ArraySlice<Float>) -> DecodingStep
}

extension GenerationParameters {
    /// The decoding rule these parameters ask for, for a request with its own random `stream`.
    public func decoding(vocabulary: Int, eos: Int, stream: UInt64) -> any Decoding {
        beamCount > 1
            ? BeamDecoding(parameters: self, vocabulary: vocabulary, eos: eos)
            : SampledDecoding(parameters: self, vocabulary: vocabulary, eos: eos, stream: stream)
    }
}

/// Greedy decoding, or sampling when `temperature` is set, for one row.
public struct SampledDecoding: Decoding {
    let parameters: GenerationParameters
    let vocabulary: Int
    let eos: Int
    /// The row's own generator, from the seed and the request's stream.
    var random: SplitMix64
    var sequence = GeneratedSequence(tokens: [], score: 0)

    public init(parameters: GenerationParameters, vocabulary: Int, eos: Int, stream: UInt64) {
        self.parameters = parameters
        self.vocabulary = vocabulary
        self.eos = eos
        // SplitMix64's output function decorrelates the streams of neighbouring requests.
        var mixer = SplitMix64(seed: parameters.seed ^ (stream &* 0x9E37_79B9_7F4A_7C15))
        random = SplitMix64(seed: mixer.next())
    }

    public var rows: Int { 1 }

    public mutating func advance(_ logits: ArraySlice<Float>) -> DecodingStep {
        precondition(logits.count == vocabulary, "one row of logits")
        var row = Array(logits)
        if sequence.tokens.count < parameters.minNewTokens { row[eos] = -.infinity }
        let token =
            parameters.isSampling ? Sampler.draw(row, parameters: parameters, random: &random) : Sampler.argmax(row)
        sequence.tokens.append(token)
        sequence.score += RowMath.logSoftmax(row)[token]
        if token == eos || sequence.tokens.count >= parameters.maxNewTokens { return .finished(sequence) }
        return .next(tokens: [token], sources: [0])
    }
}

/// Beam search as transformers (5.x) runs it for one request: keep 2·beams candidates per step, finish candidates
/// among the top `beams` that end (EOS or the length limit) with score / length^penalty, continue the best `beams`
/// that did not, and stop when no running beam can beat the worst finished one (early_stopping=False's heuristic).
public struct BeamDecoding: Decoding {
    private struct Hypothesis: Sendable {
        var tokens: [Int]
        var score: Float
        var finished: Bool
    }

    let parameters: GenerationParameters
    let vocabulary: Int
    let eos: Int
    private var running: [Hypothesis]
    private var done: [Hypothesis]
    private var improvable = true
    private var generated = 0

    public init(parameters: GenerationParameters, vocabulary: Int, eos: Int) {
        self.parameters = parameters
        self.vocabulary = vocabulary
        self.eos = eos
        let beams = parameters.beamCount
        running = (0..<beams).map { Hypothesis(tokens: [], score: $0 == 0 ? 0 : -1e9, finished: false) }
        done = [Hypothesis](repeating: Hypothesis(tokens: [], score: -1e9, finished: false), count: beams)
    }

    public var rows: Int { parameters.beamCount }

    public mutating func advance(_ logits: ArraySlice<Float>) -> DecodingStep {
        let beams = parameters.beamCount, keep = 2 * beams
        // The first step's one prompt row stands for every beam (they hold the same prompt).
        let first = generated == 0 && logits.count == vocabulary
        precondition(first || logits.count == beams * vocabulary, "one row of logits per beam")
        // Accumulated log-probabilities of every (beam, token) continuation, beam-major.
        var candidates = [Float](repeating: 0, count: beams * vocabulary)
        for beam in 0..<beams {
            let start = logits.startIndex + (first ? 0 : beam * vocabulary)
            var logProbabilities = RowMath.logSoftmax(Array(logits[start..<(start + vocabulary)]))
            if generated < parameters.minNewTokens { logProbabilities[eos] = -.infinity }
            let base = beam * vocabulary, score = running[beam].score
            for token in 0..<vocabulary { candidates[base + token] = logProbabilities[token] + score }
        }
        let top = Self.top(keep, of: candidates.count) { candidates[$0] }
        let atLimit = generated + 1 >= parameters.maxNewTokens
        let hits = top.map { ($0.index % vocabulary) == eos || atLimit }
        // Continue with the best `beams` candidates that did not just end.
        let continuing = Self.top(beams, of: top.count) { top[$0].score + (hits[$0] ? -1e9 : 0) }
        // Finish the candidates among the top `beams` that ended.
        let divisor = Float(pow(Double(generated + 1), Double(parameters.lengthPenalty)))
        var merged = done
        for (rank, candidate) in top.enumerated() {
            var score = candidate.score / divisor
            let justFinished = hits[rank] && rank < beams
            if !improvable { score += -1e9 }
            if !justFinished { score += -1e9 }
            let beam = candidate.index / vocabulary
            merged.append(
                Hypothesis(
                    tokens: running[beam].tokens + [candidate.index % vocabulary], score: score,
                    finished: justFinished))
        }
        done = Self.top(beams, of: merged.count) { merged[$0].score }.map { merged[$0.index] }
        var sources: [Int] = [], tokens: [Int] = []
        running = continuing.map { choice in
            let candidate = top[choice.index]
            let beam = candidate.index / vocabulary
            sources.append(beam)
            tokens.append(candidate.index % vocabulary)
            return Hypothesis(
                tokens: running[beam].tokens + [candidate.index % vocabulary], score: choice.score, finished: false)
        }
        generated += 1
        if improvable {
            let best = running[0].score / Float(pow(Double(generated), Double(parameters.lengthPenalty)))
            let worstFinished = done.map(\.score).min() ?? -1e9
            improvable = done.contains { best > ($0.finished ? worstFinished : -1e9) }
        }
        if !improvable || hits.allSatisfy({ $0 }) || generated >= parameters.maxNewTokens {
            return .finished(GeneratedSequence(tokens: done[0].tokens, score: done[0].score))
        }
        return .next(tokens: tokens, sources: sources)
    }

    /// The `count` highest of `score(0..<n)` with their indices, best first; on equal scores the lower index first
    /// (torch.topk's order here). One pass with a short sorted list: `n` is beams × vocabulary, `count` a few.
    private static func top(_ count: Int, of n: Int, score: (Int) -> Float) -> [(score: Float, index: Int)] {
        var best: [(score: Float, index: Int)] = []
        best.reserveCapacity(count + 1)
        for index in 0..<n {
            let value = score(index)
            if best.count == count, let last = best.last, !(value > last.score) { continue }
            var position = best.count
            while position > 0 && value > best[position - 1].score { position -= 1 }
            best.insert((value, index), at: position)
            if best.count > count { best.removeLast() }
        }
        return best
    }
}
