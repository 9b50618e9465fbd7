// The pool-adapter: ln_vision, drop cls, block-average the g x g patch grid to P x P (token i·P + j), then
// Linear → exact GELU → Linear into the language model's width. Mirrors InfMLLM `pooler.py`.

import Compute

/// Vision features to the visual tokens the language model reads.
public struct PoolingAdapter: Sendable {
    let lnWeight: [Float], lnBias: [Float], lnEpsilon: Float
    let first: Linear, second: Linear
    let grid: Int, pool: Int, visionWidth: Int
    let backend: any ComputeBackend

    public init(
        _ weights: WeightLoader, lnPrefix: String, poolerPrefix: String, visionWidth: Int, textWidth: Int,
        grid: Int, pool: Int, lnEpsilon: Float
    ) throws {
        lnWeight = try weights.floats(lnPrefix + "weight", shape: [visionWidth])
        lnBias = try weights.floats(lnPrefix + "bias", shape: [visionWidth])
        self.lnEpsilon = lnEpsilon
        first = try weights.linear(poolerPrefix + "0", out: textWidth, in: visionWidth)
        second = try weights.linear(poolerPrefix + "2", out: textWidth, in: textWidth)
        self.grid = grid
        self.pool = pool
        self.visionWidth = visionWidth
        backend = weights.backend
    }

    /// `features`: `imageCount` x `[1 + g², visionWidth]`. Returns `imageCount` x `[P², textWidth]`.
    public func callAsFunction(_ features: [Float], imageCount: Int) -> [Float] {
        let pooled = pooledGrid(normalized(features), imageCount: imageCount)
        var hidden = first(pooled, rows: imageCount * pool * pool)
        backend.gelu(&hidden)
        return second(hidden, rows: imageCount * pool * pool)
    }

    /// ln_vision over every token, cls included (it is dropped right after).
    public func normalized(_ features: [Float]) -> [Float] {
        backend.layerNorm(features, width: visionWidth, weight: lnWeight, bias: lnBias, epsilon: lnEpsilon)
    }

    /// The mean of each k x k block of patches (cls dropped), P² rows per image.
    public func pooledGrid(_ normalized: [Float], imageCount: Int) -> [Float] {
        let tokens = 1 + grid * grid, kernel = grid / pool, width = visionWidth
        var out = [Float](repeating: 0, count: imageCount * pool * pool * width)
        let area = Float(kernel * kernel)
        out.withUnsafeMutableBufferPointer { out in
            normalized.withUnsafeBufferPointer { normalized in
                for image in 0..<imageCount {
                    for i in 0..<pool {
                        for j in 0..<pool {
                            let target = out.baseAddress! + ((image * pool + i) * pool + j) * width
                            for dy in 0..<kernel {
                                for dx in 0..<kernel {
                                    let patch = (i * kernel + dy) * grid + (j * kernel + dx)
                                    let source = normalized.baseAddress! + (image * tokens + 1 + patch) * width
                                    for c in 0..<width { target[c] += source[c] }
                                }
                            }
                            for c in 0..<width { target[c] /= area }
                        }
                    }
                }
            }
        }
        return out
    }
}
