// The pool-adapter: ln_vision, drop cls, block-average the g x g patch grid to P x P (token i·P + j), then
// Linear → exact GELU → Linear into the language model's width. Mirrors InfMLLM `pooler.py`.

import Compute

/// Vision features to the visual tokens the language model reads.
public struct PoolingAdapter: Sendable {
    let lnWeight: ComputeBuffer, lnBias: ComputeBuffer, lnEpsilon: Float
    let first: Linear, second: Linear
    let grid: Int, pool: Int, visionWidth: Int
    let backend: any ComputeBackend

    public init(
        _ weights: WeightLoader, lnPrefix: String, poolerPrefix: String, visionWidth: Int, textWidth: Int,
        grid: Int, pool: Int, lnEpsilon: Float
    ) throws {
        lnWeight = try weights.vector(lnPrefix + "weight", shape: [visionWidth])
        lnBias = try weights.vector(lnPrefix + "bias", shape: [visionWidth])
        self.lnEpsilon = lnEpsilon
        first = try weights.linear(poolerPrefix + "0", out: textWidth, in: visionWidth)
        second = try weights.linear(poolerPrefix + "2", out: textWidth, in: textWidth)
        self.grid = grid
        self.pool = pool
        self.visionWidth = visionWidth
        backend = weights.backend
    }

    /// `features`: `imageCount` x `[1 + g², visionWidth]`. Returns `imageCount` x `[P², textWidth]`.
    public func callAsFunction(_ features: ComputeBuffer, imageCount: Int) -> ComputeBuffer {
        let pooled = backend.averagePool(
            normalized(features), images: imageCount, grid: grid, pool: pool, width: visionWidth)
        var hidden = first(pooled, rows: imageCount * pool * pool)
        backend.gelu(&hidden)
        return second(hidden, rows: imageCount * pool * pool)
    }

    /// ln_vision over every token, cls included (it is dropped right after).
    public func normalized(_ features: ComputeBuffer) -> ComputeBuffer {
        backend.layerNorm(features, width: visionWidth, weight: lnWeight, bias: lnBias, epsilon: lnEpsilon)
    }

    /// ln_vision on host values.
    public func normalized(_ features: [Float]) -> [Float] {
        backend.values(normalized(backend.buffer(features)))
    }

    /// The mean of each k x k block of patches (cls dropped), P² rows per image, on host values.
    public func pooledGrid(_ normalized: [Float], imageCount: Int) -> [Float] {
        backend.values(
            backend.averagePool(
                backend.buffer(normalized), images: imageCount, grid: grid, pool: pool, width: visionWidth))
    }
}
