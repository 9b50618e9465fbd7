// EVA-CLIP ViT-g/14 as BLIP-2 and InfMLLM build it: patch convolution with bias, cls token first, learned
// absolute positions, pre-norm blocks (LayerNorm eps from config, q/v biases with no k bias, exact GELU),
// no final norm. Mirrors LAVIS `eva_vit.py` (`create_eva_vit_g`), whose names the weights use.

import Compute
import Tensors

/// The vision encoder: images in, `[tokens, hidden]` features out (cls first, then the patch grid row-major).
public struct EVAVisionEncoder: Sendable {
    struct Block: Sendable {
        let norm1Weight: ComputeBuffer, norm1Bias: ComputeBuffer
        let qkv: Linear  // [3 * hidden, hidden], with q_bias, zeros for k (which has none) and v_bias as its bias
        let projection: Linear
        let norm2Weight: ComputeBuffer, norm2Bias: ComputeBuffer
        let fc1: Linear, fc2: Linear
    }

    let configuration: VisionConfiguration
    let imageSize: Int
    let patchEmbedding: Linear  // the conv kernel [hidden, 3, p, p] viewed as [hidden, 3 * p * p]
    /// Added to each image's `[1 + g², hidden]` rows (zeros for cls, patch embeddings after): cls + its position
    /// for the first row, the learned positions after.
    let tokenOffsets: ComputeBuffer
    let blocks: [Block]
    let backend: any ComputeBackend

    public init(_ weights: WeightLoader, prefix: String, configuration: VisionConfiguration, imageSize: Int) throws {
        self.configuration = configuration
        self.imageSize = imageSize
        backend = weights.backend
        let hidden = configuration.hiddenSize, patch = configuration.patchSize
        let grid = imageSize / patch
        let kernel = try weights.tensor(prefix + "patch_embed.proj.weight", shape: [hidden, 3, patch, patch])
        patchEmbedding = weights.prepared(
            weight: kernel.reshaped([hidden, 3 * patch * patch]),
            bias: try weights.floats(prefix + "patch_embed.proj.bias", shape: [hidden]))
        let classToken = try weights.floats(prefix + "cls_token", shape: [1, 1, hidden])
        var offsets = try weights.floats(prefix + "pos_embed", shape: [1, 1 + grid * grid, hidden])
        for i in 0..<hidden { offsets[i] = classToken[i] + offsets[i] }
        tokenOffsets = weights.backend.buffer(offsets)
        blocks = try (0..<configuration.layerCount).map { index in
            let p = "\(prefix)blocks.\(index)."
            let qBias = try weights.floats(p + "attn.q_bias", shape: [hidden])
            let vBias = try weights.floats(p + "attn.v_bias", shape: [hidden])
            return Block(
                norm1Weight: try weights.vector(p + "norm1.weight", shape: [hidden]),
                norm1Bias: try weights.vector(p + "norm1.bias", shape: [hidden]),
                qkv: weights.prepared(
                    weight: try weights.tensor(p + "attn.qkv.weight", shape: [3 * hidden, hidden]),
                    bias: qBias + [Float](repeating: 0, count: hidden) + vBias),
                projection: try weights.linear(p + "attn.proj", out: hidden, in: hidden),
                norm2Weight: try weights.vector(p + "norm2.weight", shape: [hidden]),
                norm2Bias: try weights.vector(p + "norm2.bias", shape: [hidden]),
                fc1: try weights.linear(p + "mlp.fc1", out: configuration.intermediateSize, in: hidden),
                fc2: try weights.linear(p + "mlp.fc2", out: hidden, in: configuration.intermediateSize))
        }
    }

    public var tokenCount: Int { 1 + (imageSize / configuration.patchSize) * (imageSize / configuration.patchSize) }

    /// `images`: each `[3, S, S]` CHW. Returns each image's `[1 + g², hidden]` features, concatenated.
    public func callAsFunction(_ images: [[Float]]) -> [Float] {
        backend.values(features(images))
    }

    /// The same, left in the backend's memory.
    public func features(_ images: [[Float]]) -> ComputeBuffer {
        let hidden = configuration.hiddenSize, tokens = tokenCount
        let patches = patchEmbedding(
            backend.patchRows(images, size: imageSize, patch: configuration.patchSize),
            rows: images.count * (tokens - 1))
        // [cls; patches] + positions, per image: the patches go after a zero row, then every row gets its offset.
        var x = backend.zeros(images.count * tokens * hidden, .f32)
        backend.copy(
            patches, into: &x, runs: images.indices.map { ($0 * (tokens - 1) * hidden, ($0 * tokens + 1) * hidden) },
            length: (tokens - 1) * hidden)
        backend.addBias(&x, width: tokens * hidden, bias: tokenOffsets)
        for block in blocks { x = forward(block, x, imageCount: images.count) }
        return x
    }

    /// One block: x += attn(norm1(x)); x += mlp(norm2(x)).
    private func forward(_ block: Block, _ input: ComputeBuffer, imageCount: Int) -> ComputeBuffer {
        let hidden = configuration.hiddenSize, tokens = tokenCount, rows = imageCount * tokens
        var x = input
        let h = backend.layerNorm(
            x, width: hidden, weight: block.norm1Weight, bias: block.norm1Bias,
            epsilon: configuration.layerNormEpsilon)
        let qkv = block.qkv(h, rows: rows)  // [rows, 3 * hidden]: q | k | v, heads contiguous within each
        let shape = AttentionShape(
            items: imageCount, queries: tokens, keys: tokens, heads: configuration.headCount,
            kvHeads: configuration.headCount, headSize: configuration.headSize,
            scale: 1 / Float(configuration.headSize).squareRoot(), limit: tokens, queryStride: 3 * hidden,
            queryItemStride: tokens * 3 * hidden, outputStride: hidden, outputItemStride: tokens * hidden,
            kvStride: 3 * hidden, kvItemStride: tokens * 3 * hidden, kvType: .f32)
        let attended = backend.attention(
            q: qkv, k: qkv, v: qkv, offsets: (0, hidden, 2 * hidden), valid: nil, validItemStride: 0, shape: shape)
        backend.add(&x, block.projection(attended, rows: rows))
        let h2 = backend.layerNorm(
            x, width: hidden, weight: block.norm2Weight, bias: block.norm2Bias,
            epsilon: configuration.layerNormEpsilon)
        var hiddenActivations = block.fc1(h2, rows: rows)
        backend.gelu(&hiddenActivations)
        backend.add(&x, block.fc2(hiddenActivations, rows: rows))
        return x
    }
}
