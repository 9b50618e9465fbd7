// Beam search for one request, with the rules of the transformers release the request names (`BeamRules`). Both
// releases keep the 2·beams best continuations each step, continue the best `beams` that do not end, and finish
// those among the top `beams` that end with EOS; they differ in the lengths that divide finished scores, in the
// bound that stops a search early, and in what is kept at the length limit.

import Foundation
import Tensors

/// Beam search for one request under `parameters.beamRules`.
public struct BeamDecoding: Decoding {
    /// A hypothesis: its tokens, its score (the sum of the tokens' log-probabilities while it runs) and that sum.
    private struct Hypothesis: Sendable {
        var tokens: [Int]
        var score: Float
        var finished: Bool
        var logProbability: Float
    }

    let parameters: GenerationParameters
    let vocabulary: Int
    let eos: Int
    private var running: [Hypothesis]
    private var generated = 0
    /// 5.x: the best `beams` finished hypotheses, padded with unfinished ones at -1e9.
    private var done: [Hypothesis]
    /// 5.x: false once no running beam can beat the worst finished hypothesis.
    private var improvable = true
    /// 4.31: the finished hypotheses.
    private var hypotheses: FinishedHypotheses

    public init(parameters: GenerationParameters, vocabulary: Int, eos: Int) {
        self.parameters = parameters
        self.vocabulary = vocabulary
        self.eos = eos
        let beams = parameters.beamCount
        running = (0..<beams).map {
            Hypothesis(tokens: [], score: $0 == 0 ? 0 : -1e9, finished: false, logProbability: $0 == 0 ? 0 : -1e9)
        }
        done = [Hypothesis](
            repeating: Hypothesis(tokens: [], score: -1e9, finished: false, logProbability: -1e9), count: beams)
        hypotheses = FinishedHypotheses(capacity: beams)
    }

    public var rows: Int { parameters.beamCount }

    public mutating func advance(_ logits: ArraySlice<Float>) -> DecodingStep {
        let beams = parameters.beamCount
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
        let top = Self.top(2 * beams, of: candidates.count) { candidates[$0] }
        switch parameters.beamRules {
        case .transformers431: return advance431(top)
        case .transformers5: return advance5(top)
        }
    }

    /// transformers 4.31 (`BeamSearchScorer`, `BeamHypotheses`): lengths count the dummy BOS that `generate` puts
    /// before the tokens of an embeddings prompt. A hypothesis ending with EOS after `n` tokens scores
    /// sum / (n + 1)^penalty (the EOS not counted, the BOS counted). The search stops once `beams` hypotheses are
    /// finished and the worst of them is at least the best candidate sum of the step over (n + 2)^penalty, `n`
    /// being the tokens before the step. At the length limit every running beam becomes a hypothesis, with its
    /// `n` tokens and the BOS counted.
    private mutating func advance431(_ top: [(score: Float, index: Int)]) -> DecodingStep {
        let beams = parameters.beamCount, before = generated
        var continuing: [Hypothesis] = [], sources: [Int] = [], tokens: [Int] = []
        for (rank, candidate) in top.enumerated() {
            let beam = candidate.index / vocabulary, token = candidate.index % vocabulary
            if token == eos {
                // An end below the top `beams` candidates is dropped.
                if rank >= beams { continue }
                hypotheses.add(
                    running[beam].tokens + [eos],
                    score: Double(candidate.score) / pow(Double(before + 1), parameters.lengthPenalty),
                    logProbability: candidate.score)
            } else {
                continuing.append(
                    Hypothesis(
                        tokens: running[beam].tokens + [token], score: candidate.score, finished: false,
                        logProbability: candidate.score))
                sources.append(beam)
                tokens.append(token)
            }
            if continuing.count == beams { break }
        }
        let stop = hypotheses.isDone(
            best: Double(top[0].score) / pow(Double(before + 2), parameters.lengthPenalty))
        running = continuing
        generated += 1
        if !stop && generated >= parameters.maxNewTokens {
            let divisor = pow(Double(generated + 1), parameters.lengthPenalty)
            for hypothesis in running {
                hypotheses.add(
                    hypothesis.tokens, score: Double(hypothesis.score) / divisor,
                    logProbability: hypothesis.logProbability)
            }
        }
        if stop || generated >= parameters.maxNewTokens {
            // Never empty here: a stop needs `beams` hypotheses, and the limit adds the running beams.
            let best =
                hypotheses.best ?? (running[0].tokens, Double(running[0].score), running[0].logProbability)
            return .finished(
                GeneratedSequence(tokens: best.tokens, score: Float(best.score), logProbability: best.logProbability))
        }
        return .next(tokens: tokens, sources: sources)
    }

    /// transformers 5.x: lengths count generated tokens, EOS included. At the length limit the top `beams`
    /// candidates finish as if they ended; the search stops when the best running beam over its length^penalty
    /// cannot beat the worst finished hypothesis (early_stopping=False's heuristic).
    private mutating func advance5(_ top: [(score: Float, index: Int)]) -> DecodingStep {
        let beams = parameters.beamCount
        let atLimit = generated + 1 >= parameters.maxNewTokens
        let hits = top.map { ($0.index % vocabulary) == eos || atLimit }
        // Continue with the best `beams` candidates that did not just end.
        let continuing = Self.top(beams, of: top.count) { top[$0].score + (hits[$0] ? -1e9 : 0) }
        // Finish the candidates among the top `beams` that ended.
        let divisor = Float(pow(Double(generated + 1), parameters.lengthPenalty))
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
                    finished: justFinished, logProbability: candidate.score))
        }
        done = Self.top(beams, of: merged.count) { merged[$0].score }.map { merged[$0.index] }
        var sources: [Int] = [], tokens: [Int] = []
        running = continuing.map { choice in
            let candidate = top[choice.index]
            let beam = candidate.index / vocabulary
            sources.append(beam)
            tokens.append(candidate.index % vocabulary)
            return Hypothesis(
                tokens: running[beam].tokens + [candidate.index % vocabulary], score: choice.score, finished: false,
                logProbability: candidate.score)
        }
        generated += 1
        if improvable {
            let best = running[0].score / Float(pow(Double(generated), parameters.lengthPenalty))
            let worstFinished = done.map(\.score).min() ?? -1e9
            improvable = done.contains { best > ($0.finished ? worstFinished : -1e9) }
        }
        if !improvable || hits.allSatisfy({ $0 }) || generated >= parameters.maxNewTokens {
            return .finished(
                GeneratedSequence(
                    tokens: done[0].tokens, score: done[0].score, logProbability: done[0].logProbability))
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

/// transformers 4.31's `BeamHypotheses` for one request: at most `capacity` finished hypotheses, scored in double
/// precision as Python scores them; a new one enters while there is room or when it beats the worst.
struct FinishedHypotheses: Sendable {
    let capacity: Int
    private(set) var entries: [(tokens: [Int], score: Double, logProbability: Float)] = []
    private var worstScore = 1e9

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func add(_ tokens: [Int], score: Double, logProbability: Float) {
        guard entries.count < capacity || score > worstScore else { return }
        entries.append((tokens, score, logProbability))
        guard entries.count > capacity else {
            worstScore = min(score, worstScore)
            return
        }
        // The lowest score leaves (the earliest of equals); the next lowest becomes the worst.
        let order = entries.indices.sorted { (entries[$0].score, $0) < (entries[$1].score, $1) }
        worstScore = entries[order[1]].score
        entries.remove(at: order[0])
    }

    /// `early_stopping=False`: done once full and the worst is at least `best`, the step's best candidate score.
    func isDone(best: Double) -> Bool {
        entries.count >= capacity && worstScore >= best
    }

    /// The highest score; of equals the latest added (Python's stable sort, then `pop()`).
    var best: (tokens: [Int], score: Double, logProbability: Float)? {
        guard var chosen = entries.indices.first else { return nil }
        for index in entries.indices where entries[index].score >= entries[chosen].score { chosen = index }
        return entries[chosen]
    }
}
