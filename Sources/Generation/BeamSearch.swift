// Beam search as transformers (5.x) runs it: keep 2·beams candidates per step, finish candidates among the top
// `beams` that end (EOS or the length limit) with score / length^penalty, continue the best `beams` that did not,
// and stop when no running beam can beat the worst finished one (early_stopping=False's heuristic).

import Foundation

extension Generator {
    private struct Hypothesis {
        var tokens: [Int]
        var score: Float
        var finished: Bool
    }

    func beamSearch<Model: TokenDecoder>(
        _ model: inout Model, embeddings: [Float], length: Int, valid: [Bool], batch: Int,
        parameters: GenerationParameters
    ) -> [GeneratedSequence] {
        let beams = parameters.beamCount, vocabulary = model.vocabularySize, eos = model.eosTokenID
        let keep = 2 * beams
        let prefilled = model.prefill(embeddings, length: length, valid: valid, batch: batch)
        // The prompt is identical across a row's beams: copy each row's cache and last logits `beams` times.
        let expand = (0..<batch).flatMap { row in [Int](repeating: row, count: beams) }
        model.reorder(expand)
        var logits = expand.flatMap { prefilled[($0 * vocabulary)..<(($0 + 1) * vocabulary)] }
        var running = [[Hypothesis]](
            repeating: (0..<beams).map { Hypothesis(tokens: [], score: $0 == 0 ? 0 : -1e9, finished: false) },
            count: batch)
        var done = [[Hypothesis]](
            repeating: [Hypothesis](repeating: Hypothesis(tokens: [], score: -1e9, finished: false), count: beams),
            count: batch)
        var improvable = [Bool](repeating: true, count: batch)
        var generated = 0
        while true {
            var sources: [Int] = []
            var nextTokens: [Int] = []
            var allHit = true
            for item in 0..<batch {
                // Accumulated log-probabilities of every (beam, token) continuation, beam-major.
                var candidates = [Float](repeating: 0, count: beams * vocabulary)
                for beam in 0..<beams {
                    let row = item * beams + beam
                    var logProbabilities = RowMath.logSoftmax(
                        Array(logits[(row * vocabulary)..<((row + 1) * vocabulary)]))
                    if generated < parameters.minNewTokens { logProbabilities[eos] = -.infinity }
                    let base = beam * vocabulary, score = running[item][beam].score
                    for token in 0..<vocabulary { candidates[base + token] = logProbabilities[token] + score }
                }
                let top = Self.top(keep, of: candidates.count) { candidates[$0] }
                let atLimit = generated + 1 >= parameters.maxNewTokens
                let hits = top.map { ($0.index % vocabulary) == eos || atLimit }
                if !hits.allSatisfy({ $0 }) { allHit = false }
                // Continue with the best `beams` candidates that did not just end.
                let continuing = Self.top(beams, of: top.count) { top[$0].score + (hits[$0] ? -1e9 : 0) }
                // Finish the candidates among the top `beams` that ended.
                let divisor = Float(pow(Double(generated + 1), Double(parameters.lengthPenalty)))
                var merged = done[item]
                for (rank, candidate) in top.enumerated() {
                    var score = candidate.score / divisor
                    let justFinished = hits[rank] && rank < beams
                    if !improvable[item] { score += -1e9 }
                    if !justFinished { score += -1e9 }
                    let beam = candidate.index / vocabulary
                    merged.append(
                        Hypothesis(
                            tokens: running[item][beam].tokens + [candidate.index % vocabulary], score: score,
                            finished: justFinished))
                }
                done[item] = Self.top(beams, of: merged.count) { merged[$0].score }.map { merged[$0.index] }
                running[item] = continuing.map { choice in
                    let candidate = top[choice.index]
                    let beam = candidate.index / vocabulary
                    sources.append(item * beams + beam)
                    nextTokens.append(candidate.index % vocabulary)
                    return Hypothesis(
                        tokens: running[item][beam].tokens + [candidate.index % vocabulary], score: choice.score,
                        finished: false)
                }
            }
            generated += 1
            for item in 0..<batch where improvable[item] {
                let best = running[item][0].score / Float(pow(Double(generated), Double(parameters.lengthPenalty)))
                let worstFinished = done[item].map(\.score).min() ?? -1e9
                improvable[item] = done[item].contains { best > ($0.finished ? worstFinished : -1e9) }
            }
            if !improvable.contains(true) || allHit || generated >= parameters.maxNewTokens { break }
            model.reorder(sources)
            logits = model.step(nextTokens)
        }
        return done.map { GeneratedSequence(tokens: $0[0].tokens, score: $0[0].score) }
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
