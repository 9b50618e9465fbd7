// EVA-CLIP ViT-g/14 as BLIP-2 and InfMLLM build it: patch convolution with bias, cls token first, learned
// absolute positions, pre-norm blocks (LayerNorm eps from config, q/v biases with no k bias, exact GELU),
// no final norm. Mirrors LAVIS `eva_vit.py` (`create_eva_vit_g`), whose names the weights use.

import Compute
import Tensors

/// The vision encoder: images in, `[tokens, hidden]` features out (cls first, then the patch grid row-major).
public struct EVAVisionEncoder: Sendable {
    struct Block: Sendable {
        let norm1Weight: [Float], norm1Bias: [Float]
        let qkv: Linear  // [3 * hidden, hidden], no bias of its own
        let qkvBias: [Float]  // q_bias, zeros for k, v_bias
        let projection: Linear
        let norm2Weight: [Float], norm2Bias: [Float]
        let fc1: Linear, fc2: Linear
    }

    let configuration: VisionConfiguration
    let imageSize: Int
    let patchEmbedding: Linear  // the conv kernel [hidden, 3, p, p] viewed as [hidden, 3 * p * p]
    let classToken: [Float]  // [hidden]
    let positions: [Float]  // [1 + g², hidden]
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
        classToken = try weights.floats(prefix + "cls_token", shape: [1, 1, hidden])
        positions = try weights.floats(prefix + "pos_embed", shape: [1, 1 + grid * grid, hidden])
        blocks = try (0..<configuration.layerCount).map { index in
            let p = "\(prefix)blocks.\(index)."
            let qBias = try weights.floats(p + "attn.q_bias", shape: [hidden])
            let vBias = try weights.floats(p + "attn.v_bias", shape: [hidden])
            return Block(
                norm1Weight: try weights.floats(p + "norm1.weight", shape: [hidden]),
                norm1Bias: try weights.floats(p + "norm1.bias", shape: [hidden]),
                qkv: try weights.linear(p + "attn.qkv", out: 3 * hidden, in: hidden, bias: false),
                qkvBias: qBias + [Float](repeating: 0, count: hidden) + vBias,
                projection: try weights.linear(p + "attn.proj", out: hidden, in: hidden),
                norm2Weight: try weights.floats(p + "norm2.weight", shape: [hidden]),
                norm2Bias: try weights.floats(p + "norm2.bias", shape: [hidden]),
                fc1: try weights.linear(p + "mlp.fc1", out: configuration.intermediateSize, in: hidden),
                fc2: try weights.linear(p + "mlp.fc2", out: hidden, in: configuration.intermediateSize))
        }
    }

    public var tokenCount: Int { 1 + (imageSize / configuration.patchSize) * (imageSize / configuration.patchSize) }

    /// `images`: each `[3, S, S]` CHW. Returns each image's `[1 + g², hidden]` features, concatenated.
    public func callAsFunction(_ images: [[Float]]) -> [Float] {
        let hidden = configuration.hiddenSize, tokens = tokenCount
        let patches = patchEmbedding(images.flatMap(patchRows), rows: images.count * (tokens - 1))
        // [cls; patches] + positions, per image.
        var x = [Float](unsafeUninitializedCapacity: images.count * tokens * hidden) { out, initialized in
            patches.withUnsafeBufferPointer { patches in
                positions.withUnsafeBufferPointer { positions in
                    for image in images.indices {
                        let base = image * tokens * hidden
                        for i in 0..<hidden { out[base + i] = classToken[i] + positions[i] }
                        for t in 1..<tokens {
                            let source = ((image * (tokens - 1)) + t - 1) * hidden, row = base + t * hidden
                            for i in 0..<hidden { out[row + i] = patches[source + i] + positions[t * hidden + i] }
                        }
                    }
                }
            }
            initialized = images.count * tokens * hidden
        }
        for block in blocks { x = forward(block, x, imageCount: images.count) }
        return x
    }

    /// One block: x += attn(norm1(x)); x += mlp(norm2(x)).
    private func forward(_ block: Block, _ input: [Float], imageCount: Int) -> [Float] {
        let hidden = configuration.hiddenSize, tokens = tokenCount, rows = imageCount * tokens
        var x = input
        let h = backend.layerNorm(
            x, width: hidden, weight: block.norm1Weight, bias: block.norm1Bias,
            epsilon: configuration.layerNormEpsilon)
        var qkv = block.qkv(h, rows: rows)  // [rows, 3 * hidden]: q | k | v, heads contiguous within each
        backend.addBias(&qkv, width: 3 * hidden, bias: block.qkvBias)
        var attended = [Float](repeating: 0, count: rows * hidden)
        let shape = AttentionShape(
            items: imageCount, queries: tokens, keys: tokens, heads: configuration.headCount,
            kvHeads: configuration.headCount, headSize: configuration.headSize,
            scale: 1 / Float(configuration.headSize).squareRoot(), limit: tokens, queryStride: 3 * hidden,
            queryItemStride: tokens * 3 * hidden, outputStride: hidden, outputItemStride: tokens * hidden,
            kvStride: 3 * hidden, kvItemStride: tokens * 3 * hidden, kvType: .f32)
        qkv.withUnsafeBufferPointer { qkv in
            attended.withUnsafeMutableBufferPointer { out in
                let base = qkv.baseAddress!
                backend.attention(
                    q: base, k: UnsafeRawPointer(base + hidden), v: UnsafeRawPointer(base + 2 * hidden),
                    out: out.baseAddress!, valid: nil, validItemStride: 0, shape: shape)
            }
        }
        backend.add(&x, block.projection(attended, rows: rows))
        let h2 = backend.layerNorm(
            x, width: hidden, weight: block.norm2Weight, bias: block.norm2Bias,
            epsilon: configuration.layerNormEpsilon)
        var hiddenActivations = block.fc1(h2, rows: rows)
        backend.gelu(&hiddenActivations)
        backend.add(&x, block.fc2(hiddenActivations, rows: rows))
        return x
    }

    /// The image as one row per patch (row-major over the grid), each row the patch's pixels in the conv
    /// kernel's (channel, y, x) order, so the convolution is a matrix product.
    private func patchRows(_ image: [Float]) -> [Float] {
        let patch = configuration.patchSize, grid = imageSize / patch
        var rows = [Float]()
        rows.reserveCapacity(grid * grid * 3 * patch * patch)
        for gy in 0..<grid {
            for gx in 0..<grid {
                for channel in 0..<3 {
                    for y in 0..<patch {
                        let base = channel * imageSize * imageSize + (gy * patch + y) * imageSize + gx * patch
                        rows.append(contentsOf: image[base..<(base + patch)])
                    }
                }
            }
        }
        return rows
    }
}
