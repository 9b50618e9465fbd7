// Attention on the GPU, reading queries, keys and values where they are (activations, or the key/value cache) and
// writing a new buffer. Many queries (the vision encoder, prefill) go through the tensor cores: per item, scores
// = Q Kᵀ as one strided batched product over heads, a masked softmax kernel, then P V likewise. Few queries
// (decoding) take one fused kernel for every query row, head and item.

import CCUDA
import Compute

extension CUDABackend {
    public func attention(
        q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, offsets: (q: Int, k: Int, v: Int), valid: [UInt8]?,
        validItemStride: Int, shape: AttentionShape
    ) -> ComputeBuffer {
        precondition(shape.headSize <= 512, "attention: head size \(shape.headSize) over 512")
        precondition(precision != .f32 || shape.kvType == .f32, "the f32 mode keeps keys and values in f32")
        precondition(k.elementType == shape.kvType && v.elementType == shape.kvType, "attention: key type")
        let width = shape.heads * shape.headSize
        let outCount =
            shape.items == 0 || shape.queries == 0
            ? 0 : (shape.items - 1) * shape.outputItemStride + (shape.queries - 1) * shape.outputStride + width
        if shape.queries >= Self.productAttentionQueries {
            return onDevice("attention") {
                try productAttention(
                    q: q, k: k, v: v, offsets: offsets, valid: valid, validItemStride: validItemStride, shape: shape,
                    outCount: outCount)
            }
        }
        let sharedBytes = shape.keys * 4
        precondition(
            sharedBytes <= context.attentionSharedLimit,
            "attention over \(shape.keys) keys needs \(sharedBytes) bytes of shared memory; \(device) gives "
                + "\(context.attentionSharedLimit)")
        return onDevice("attention") {
            var (q, k, v) = (q, k, v)
            let out = try empty(outCount)
            guard outCount > 0 else { return out }
            let dense = shape.outputStride == width && shape.outputItemStride == shape.queries * width
            if !dense { try context.zero(out.device!.address, bytes: outCount * 4) }
            let size = UInt64(shape.kvType.size)
            let qd = try address(&q) + UInt64(offsets.q * 4)
            let kd = try address(&k) + UInt64(offsets.k) * size
            let vd = try address(&v) + UInt64(offsets.v) * size
            let flags = try valid.map { try small($0, slot: .flags) } ?? 0
            try context.launch(
                shape.kvType == .bf16 ? "attention_bf16kv" : "attention_f32kv",
                grid: (shape.queries, shape.heads, shape.items), block: 128, sharedBytes: sharedBytes,
                [
                    .pointer(qd), .pointer(kd), .pointer(vd), .pointer(out.device!.address), .pointer(flags),
                    .int64(Int64(validItemStride)), .int32(Int32(shape.queries)), .int32(Int32(shape.keys)),
                    .int32(Int32(shape.heads)), .int32(Int32(shape.kvHeads)), .int32(Int32(shape.headSize)),
                    .float(shape.scale), .int32(Int32(shape.limit)), .int64(Int64(shape.queryStride)),
                    .int64(Int64(shape.queryItemStride)), .int64(Int64(shape.outputStride)),
                    .int64(Int64(shape.outputItemStride)), .int64(Int64(shape.kvStride)),
                    .int64(Int64(shape.kvItemStride)),
                ])
            return out
        }
    }

    /// Queries per item from which attention goes through the products.
    static let productAttentionQueries = 16

    private func productAttention(
        q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, offsets: (q: Int, k: Int, v: Int), valid: [UInt8]?,
        validItemStride: Int, shape: AttentionShape, outCount: Int
    ) throws -> ComputeBuffer {
        var (q, k, v) = (q, k, v)
        let out = try empty(outCount)
        let width = shape.heads * shape.headSize
        if shape.outputStride != width || shape.outputItemStride != shape.queries * width {
            try context.zero(out.device!.address, bytes: outCount * 4)
        }
        let (qd, kd, vd) = (try address(&q), try address(&k), try address(&v))
        let bf16 = precision != .f32, type = Int32(bf16 ? CCUDA_BF16 : CCUDA_F32)
        let size = bf16 ? 2 : 4, d = shape.headSize, groups = shape.heads / shape.kvHeads
        let (queries, keys) = (shape.queries, shape.keys)
        let square = queries * keys
        let scores = try context.memory(shape.heads * square * 4)
        let probabilities = bf16 ? try context.memory(shape.heads * square * 2) : scores
        let flags = try valid.map { try small($0, slot: .flags) } ?? 0
        let qSpan = (queries - 1) * shape.queryStride + width
        let kvSpan = (keys - 1) * shape.kvStride + shape.kvHeads * d
        // bf16 copies of the item's operands for the tensor cores (f32 activations; a bf16 cache is used as it is).
        let shared =
            k.device === q.device && v.device === q.device && shape.kvType == .f32
            && shape.queryItemStride == shape.kvItemStride
        let sharedSpan = max(offsets.q + qSpan, offsets.k + kvSpan, offsets.v + kvSpan)
        let staging = try bf16 ? context.memory((shared ? sharedSpan : qSpan + 2 * kvSpan) * 2) : nil
        func toBF16(_ from: UInt64, count: Int, to: UInt64) throws {
            try context.launch(
                "to_bf16", grid: CUDAContext.grid(elements: count),
                [.pointer(from), .pointer(to), .int64(Int64(count))])
        }
        for item in 0..<shape.items {
            var qi = qd + UInt64((offsets.q + item * shape.queryItemStride) * 4)
            var ki = kd + UInt64((offsets.k + item * shape.kvItemStride) * shape.kvType.size)
            var vi = vd + UInt64((offsets.v + item * shape.kvItemStride) * shape.kvType.size)
            if let staging {
                let base = staging.address
                if shared {
                    let start = qd + UInt64(item * shape.queryItemStride * 4)
                    try toBF16(start, count: sharedSpan, to: base)
                    (qi, ki, vi) = (
                        base + UInt64(offsets.q * 2), base + UInt64(offsets.k * 2), base + UInt64(offsets.v * 2)
                    )
                } else {
                    try toBF16(qi, count: qSpan, to: base)
                    qi = base
                    if shape.kvType == .f32 {
                        let kb = base + UInt64(qSpan * 2), vb = kb + UInt64(kvSpan * 2)
                        try toBF16(ki, count: kvSpan, to: kb)
                        try toBF16(vi, count: kvSpan, to: vb)
                        (ki, vi) = (kb, vb)
                    }
                }
            }
            for g in 0..<groups {
                // Heads g, g + groups, ...: one per key/value head j, h = j * groups + g.
                try context.gemmBatched(
                    type: type, transposeA: true, transposeB: false, m: keys, n: queries, k: d,
                    a: ki, lda: shape.kvStride, strideA: d,
                    b: qi + UInt64(g * d * size), ldb: shape.queryStride, strideB: groups * d,
                    c: scores.address + UInt64(g * square * 4), ldc: keys, strideC: groups * square,
                    batch: shape.kvHeads)
            }
            try context.launch(
                bf16 ? "softmax_rows_bf16" : "softmax_rows_f32", grid: (queries, shape.heads, 1),
                [
                    .pointer(scores.address), .pointer(probabilities.address),
                    .pointer(flags == 0 ? 0 : flags + UInt64(item * validItemStride)), .int32(Int32(queries)),
                    .int32(Int32(keys)), .float(shape.scale), .int32(Int32(shape.limit)),
                ])
            let oi = out.device!.address + UInt64(item * shape.outputItemStride * 4)
            for g in 0..<groups {
                try context.gemmBatched(
                    type: type, transposeA: false, transposeB: false, m: d, n: queries, k: keys,
                    a: vi, lda: shape.kvStride, strideA: d,
                    b: probabilities.address + UInt64(g * square * size), ldb: keys, strideB: groups * square,
                    c: oi + UInt64(g * d * 4), ldc: shape.outputStride, strideC: groups * d, batch: shape.kvHeads)
            }
        }
        return out
    }
}

extension CUDABackend {
    /// One launch set per segment (the kernels above), gathered into one result.
    public func segmentedAttention(q: ComputeBuffer, k: ComputeBuffer, v: ComputeBuffer, _ layout: SegmentedAttention)
        -> ComputeBuffer
    {
        segmentedAttentionBySegment(q: q, k: k, v: v, layout)
    }
}
