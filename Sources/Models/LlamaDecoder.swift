// LLaMA as Hugging Face's LlamaForCausalLM computes it: RMSNorm, rotate-half rotary positions, grouped-query
// attention over each sequence's region of the key/value arena, SiLU-gated MLP, final norm and an untied lm_head.

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

    /// Key/value memory for `positions` positions of this decoder's layers.
    public func makeArena(positions: Int) -> KVArena {
        KVArena(
            layerCount: configuration.layerCount, kvWidth: configuration.resolvedKVHeadCount * configuration.headSize,
            positions: positions, backend: backend)
    }

    /// Bytes of key/value memory one position takes.
    public var bytesPerPosition: Int {
        KVArena.bytesPerPosition(
            layerCount: configuration.layerCount, kvWidth: configuration.resolvedKVHeadCount * configuration.headSize,
            elementType: backend.kvElementType)
    }

    /// Runs each segment's new positions through the model, appending their keys and values to its region.
    ///
    /// A segment's rows depend only on its own inputs and region: the products are row by row and attention is
    /// per segment, so a sequence computes the same values alone or beside any others.
    /// - Parameters:
    ///   - inputs: `[rows, hidden]` input embeddings, the segments' rows one after another.
    /// - Returns: `[n, vocab]` logits of the last new position of each of the `n` segments that want them, in order.
    public func forward(_ inputs: [Float], segments: [DecoderSegment], arena: inout KVArena) -> [Float] {
        let hidden = configuration.hiddenSize, rows = segments.reduce(0) { $0 + $1.count }
        precondition(inputs.count == rows * hidden, "decoder input shape")
        var firstRows: [Int] = [], row = 0
        for segment in segments {
            precondition(segment.past + segment.count <= segment.region.capacity, "\(segment) overflows its region")
            firstRows.append(row)
            row += segment.count
        }
        let positions = segments.flatMap { Array($0.past..<($0.past + $0.count)) }
        let storeRuns = zip(segments, firstRows).map { (from: $1, to: $0.region.start + $0.past, count: $0.count) }
        let attention = SegmentedAttention(
            heads: configuration.headCount, kvHeads: configuration.resolvedKVHeadCount,
            headSize: configuration.headSize, scale: 1 / Float(configuration.headSize).squareRoot(),
            queryStride: hidden, kvStride: arena.kvWidth, kvType: arena.elementType,
            segments: zip(segments, firstRows).map { segment, first in
                AttentionSegment(
                    queryRow: first, queries: segment.count, keyRow: segment.region.start,
                    keys: segment.past + segment.count, limit: segment.past + 1)
            })
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
            arena.store(layer: index, keys: k, values: v, runs: storeRuns)
            let attended = backend.segmentedAttention(
                q: q, k: arena.keys[index], v: arena.values[index], attention)
            backend.add(&x, layer.output(attended, rows: rows))
            let h2 = backend.rmsNorm(
                x, width: hidden, weight: layer.postAttentionNorm, epsilon: configuration.rmsNormEpsilon)
            var gate = layer.gate(h2, rows: rows)
            backend.siluMultiply(&gate, layer.up(h2, rows: rows))
            backend.add(&x, layer.down(gate, rows: rows))
        }
        let last = zip(segments, firstRows).filter { $0.0.wantsLogits }.map { $1 + $0.count - 1 }
        guard !last.isEmpty else { return [] }
        let gathered = backend.gatherRows(x, width: hidden, rows: last)
        return backend.values(
            lmHead(
                backend.rmsNorm(gathered, width: hidden, weight: norm, epsilon: configuration.rmsNormEpsilon),
                rows: last.count))
    }
}

/// One sequence's part of a decoder call: `count` new positions after the `past` ones its region already holds.
public struct DecoderSegment: Sendable, Equatable {
    public var region: KVRegion
    public var past: Int
    public var count: Int
    /// Whether the call returns logits for this segment's last new position.
    public var wantsLogits: Bool

    public init(region: KVRegion, past: Int, count: Int, wantsLogits: Bool) {
        self.region = region
        self.past = past
        self.count = count
        self.wantsLogits = wantsLogits
    }
}
