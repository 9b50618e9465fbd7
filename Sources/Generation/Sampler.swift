// Choosing one token from logits: argmax, or a draw after temperature, top-k and top-p, in transformers' order.

import Foundation
import Tensors

enum Sampler {
    /// The index of the largest logit; the first one on ties, as torch.argmax.
    static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for index in logits.indices where logits[index] > logits[best] { best = index }
        return best
    }

    /// A token drawn from softmax(logits / temperature), restricted to the top-k and then to the top-p nucleus.
    static func draw(_ logits: [Float], parameters: GenerationParameters, random: inout SplitMix64) -> Int {
        let temperature = parameters.temperature ?? 1
        var scaled = logits.map { $0 / temperature }
        // A temperature so small that the largest logit overflows (to +inf, or every logit to -inf) leaves a
        // distribution of NaNs: it is the greedy choice in the limit, so that is what it gives.
        if let top = scaled.max(), !top.isFinite { return argmax(logits) }
        let order = scaled.indices.sorted { scaled[$0] > scaled[$1] || (scaled[$0] == scaled[$1] && $0 < $1) }
        if parameters.topK > 0 && parameters.topK < order.count {
            // Every token below the k-th largest value goes; tokens tied with it stay (TopKLogitsWarper).
            let kth = scaled[order[parameters.topK - 1]]
            for index in order[parameters.topK...] where scaled[index] < kth { scaled[index] = -.infinity }
        }
        var probabilities = RowMath.softmaxed(scaled)
        if parameters.topP < 1 {
            // Keep the most likely tokens until their mass reaches top_p (always at least one).
            var mass: Float = 0
            var keep = Set<Int>()
            for index in order where probabilities[index] > 0 {
                keep.insert(index)
                mass += probabilities[index]
                if mass >= parameters.topP { break }
            }
            for index in probabilities.indices where !keep.contains(index) { probabilities[index] = 0 }
            let total = probabilities.reduce(0, +)
            probabilities = probabilities.map { $0 / total }
        }
        let threshold = Float(Double(random.next() >> 11) / Double(1 << 53))
        var cumulative: Float = 0
        for index in order where probabilities[index] > 0 {
            cumulative += probabilities[index]
            if threshold < cumulative { return index }
        }
        return order.first { probabilities[$0] > 0 } ?? order[0]
    }
}

/// The two row operations decoding needs, in f32 as PyTorch computes them.
enum RowMath {
    static func logSoftmax(_ logits: [Float]) -> [Float] {
        let maximum = logits.max() ?? 0
        var sum: Float = 0
        for value in logits { sum += expf(value - maximum) }
        let logSum = logf(sum)
        return logits.map { $0 - maximum - logSum }
    }

    static func softmaxed(_ logits: [Float]) -> [Float] {
        let maximum = logits.max() ?? 0
        guard maximum > -.infinity else { return logits.map { _ in 0 } }
        let exponentials = logits.map { expf($0 - maximum) }
        let sum = exponentials.reduce(0, +)
        return exponentials.map { $0 / sum }
    }
}
