// Choosing tokens one step at a time for one request (greedy, sampled, or a beam group), with the semantics of
// Hugging Face transformers' `generate` for a decoder-only model called with inputs_embeds: lengths count generated
// tokens only. The scheduler feeds each request its own logits, so a request's tokens never depend on its neighbours.

import Foundation
import Tensors

/// The tokens generated for one prompt: up to and including end-of-sequence when it was produced.
public struct GeneratedSequence: Sendable, Equatable {
    public var tokens: [Int]
    /// The beam score (sum of log-probabilities over length^penalty) for beam search; `logProbability` otherwise.
    public var score: Float
    /// The sum of the tokens' log-probabilities under the model, each the log-softmax of its step's logits as
    /// transformers' `compute_transition_scores` gives it for greedy decoding and beam search: greedy and sampling
    /// take it over the tokens `min_new_tokens` allows (before temperature, top-k and top-p), beam search over all.
    public var logProbability: Float
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
    var sequence = GeneratedSequence(tokens: [], score: 0, logProbability: 0)

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
        sequence.logProbability += RowMath.logSoftmax(row)[token]
        sequence.score = sequence.logProbability
        if token == eos || sequence.tokens.count >= parameters.maxNewTokens { return .finished(sequence) }
        return .next(tokens: [token], sources: [0])
    }
}
