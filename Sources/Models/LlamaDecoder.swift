// LLaMA as Hugging Face's LlamaForCausalLM computes it: RMSNorm, rotate-half rotary positions, grouped-query
// attention over a KV cache with left-padding masks, SiLU-gated MLP, final norm and an untied lm_head.

import Compute
import Foundation
import Tensors

/// The language model.
public struct LlamaDecoder: Sendable {
    struct Layer: Sendable {
        let inputNorm: ComputeBuffer
        let query: Linear, key: Linear, value: Linear, output: Linear
        let postAttentionNorm: ComputeBuffer
        let gate: Linear, up: Linear, down: Linear
    }

    public let configuration: TextConfiguration
    let embeddings: WeightTensor  // [vocab, hidden]
    let layers: [Layer]
    let norm: ComputeBuffer
    let lmHead: Linear
    /// 1 / theta^(2i / headSize), computed in f32 as transformers does.
    let inverseFrequencies: ComputeBuffer
    let backend: any ComputeBackend

    public init(_ weights: WeightLoader, prefix: String, lmHead lmHeadName: String, configuration: TextConfiguration)
        throws
    {
        self.configuration = configuration
        backend = weights.backend
        let hidden = configuration.hiddenSize, kvWidth = configuration.resolvedKVHeadCount * configuration.headSize
        embeddings = try weights.tensor(prefix + "embed_tokens.weight", shape: [configuration.vocabularySize, hidden])
        layers = try (0..<configuration.layerCount).map { index in
            let p = "\(prefix)layers.\(index)."
            return Layer(
                inputNorm: try weights.vector(p + "input_layernorm.weight", shape: [hidden]),
                query: try weights.linear(p + "self_attn.q_proj", out: hidden, in: hidden, bias: false),
                key: try weights.linear(p + "self_attn.k_proj", out: kvWidth, in: hidden, bias: false),
                value: try weights.linear(p + "self_attn.v_proj", out: kvWidth, in: hidden, bias: false),
                output: try weights.linear(p + "self_attn.o_proj", out: hidden, in: hidden, bias: false),
                postAttentionNorm: try weights.vector(p + "post_attention_layernorm.weight", shape: [hidden]),
                gate: try weights.linear(
                    p + "mlp.gate_proj", out: configuration.intermediateSize, in: hidden, bias: false),
                up: try weights.linear(p + "mlp.up_proj", out: configuration.intermediateSize, in: hidden, bias: false),
                down: try weights.linear(
                    p + "mlp.down_proj", out: hidden, in: configuration.intermediateSize, bias: false))
        }
        norm = try weights.vector(prefix + "norm.weight", shape: [hidden])
        lmHead = weights.prepared(
            weight: try weights.tensor(lmHeadName, shape: [configuration.vocabularySize, hidden]), bias: nil)
        let half = configuration.headSize / 2
        let theta = configuration.resolvedRopeTheta
        inverseFrequencies = backend.buffer(
            (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(configuration.headSize)) })
    }

    /// The embedding rows of `ids`, `[ids.count, hidden]`.
    public func embed(_ ids: [Int]) -> [Float] {
        let hidden = configuration.hiddenSize
        var out = [Float](repeating: 0, count: ids.count * hidden)
        out.withUnsafeMutableBufferPointer { buffer in
            for (row, id) in ids.enumerated() {
                embeddings.convert((id * hidden)..<((id + 1) * hidden), into: buffer.baseAddress! + row * hidden)
            }
        }
        return out
    }

    public func makeCache(batch: Int, capacity: Int) -> KVCache {
        KVCache(
            layerCount: configuration.layerCount, kvWidth: configuration.resolvedKVHeadCount * configuration.headSize,
            batch: batch, capacity: capacity, backend: backend)
    }

    /// Bytes of the key/value cache for `batch` rows of `capacity` positions.
    public func cacheBytes(batch: Int, capacity: Int) -> Int {
        KVCache.bytes(
            layerCount: configuration.layerCount, kvWidth: configuration.resolvedKVHeadCount * configuration.headSize,
            batch: batch, capacity: capacity, elementType: backend.kvElementType)
    }

    /// Runs `count` new positions per row through the model and appends them to `cache`.
    ///
    /// - Parameters:
    ///   - inputs: `[batch, count, hidden]` input embeddings.
    ///   - valid: `[batch, count]`, false for left padding.
    ///   - allLogits: return logits for every new position instead of only the last.
    /// - Returns: `[batch, vocab]` logits of each row's last new position (or `[batch, count, vocab]`).
    public func forward(_ inputs: [Float], count: Int, valid: [Bool], cache: inout KVCache, allLogits: Bool = false)
        -> [Float]
    {
        let batch = cache.batch, hidden = configuration.hiddenSize, rows = batch * count
        precondition(inputs.count == rows * hidden && valid.count == rows, "decoder input shape")
        let positions = cache.append(count: count, valid: valid)
        var x = backend.buffer(inputs)
        for (index, layer) in layers.enumerated() {
            let h = backend.rmsNorm(x, width: hidden, weight: layer.inputNorm, epsilon: configuration.rmsNormEpsilon)
            var q = layer.query(h, rows: rows), k = layer.key(h, rows: rows)
            let v = layer.value(h, rows: rows)
            backend.rotary(
                &q, heads: configuration.headCount, headSize: configuration.headSize, positions: positions,
                inverseFrequencies: inverseFrequencies)
            backend.rotary(
                &k, heads: configuration.resolvedKVHeadCount, headSize: configuration.headSize, positions: positions,
                inverseFrequencies: inverseFrequencies)
            cache.store(layer: index, keys: k, values: v, count: count)
            let attended = attend(q, layer: index, count: count, cache: cache)
            backend.add(&x, layer.output(attended, rows: rows))
            let h2 = backend.rmsNorm(
                x, width: hidden, weight: layer.postAttentionNorm, epsilon: configuration.rmsNormEpsilon)
            var gate = layer.gate(h2, rows: rows)
            backend.siluMultiply(&gate, layer.up(h2, rows: rows))
            backend.add(&x, layer.down(gate, rows: rows))
        }
        cache.advance(by: count)
        if allLogits {
            let normalized = backend.rmsNorm(x, width: hidden, weight: norm, epsilon: configuration.rmsNormEpsilon)
            return backend.values(lmHead(normalized, rows: rows))
        }
        let last = backend.gatherRows(x, width: hidden, rows: (0..<batch).map { $0 * count + count - 1 })
        return backend.values(
            lmHead(
                backend.rmsNorm(last, width: hidden, weight: norm, epsilon: configuration.rmsNormEpsilon), rows: batch))
    }

    /// Each row's new queries against that row's cached keys: causal, and blind to left padding.
    private func attend(_ q: ComputeBuffer, layer: Int, count: Int, cache: KVCache) -> ComputeBuffer {
        let batch = cache.batch, hidden = configuration.hiddenSize, keys = cache.length + count
        let shape = AttentionShape(
            items: batch, queries: count, keys: keys, heads: configuration.headCount,
            kvHeads: configuration.resolvedKVHeadCount, headSize: configuration.headSize,
            scale: 1 / Float(configuration.headSize).squareRoot(), limit: cache.length + 1, queryStride: hidden,
            queryItemStride: count * hidden, outputStride: hidden, outputItemStride: count * hidden,
            kvStride: cache.kvWidth, kvItemStride: cache.capacity * cache.kvWidth, kvType: cache.elementType)
        return backend.attention(
            q: q, k: cache.keys[layer], v: cache.values[layer], offsets: (0, 0, 0), valid: cache.mask,
            validItemStride: cache.capacity, shape: shape)
    }
}
