// Attention on the CPU: per (item, head) tasks across the pool. The fast mode multiplies many queries through the
// bf16 kernels (keys and values packed per task) and few queries (decoding) with a direct loop over the cache; the
// exact mode runs two OpenBLAS SGEMMs per head.

import CKernels
import COpenBLAS
import Compute

extension CPUBackend {
    /// Queries per item from which the packed-product path pays off.
    static let packedAttentionQueries = 16
    /// Query rows per block of scores, so that a block stays in L2.
    static let queryBlock = 128

    public func attention(
        q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, out: UnsafeMutablePointer<Float>,
        valid: UnsafePointer<UInt8>?, validItemStride: Int, shape: AttentionShape
    ) {
        guard shape.items > 0, shape.queries > 0 else { return }
        if !isFast {
            precondition(shape.kvType == .f32, "the f32 mode keeps keys and values in f32")
            attentionSGEMM(q: q, k: k, v: v, out: out, valid: valid, validItemStride: validItemStride, shape: shape)
            return
        }
        let tasks = shape.items * shape.heads
        let packed = shape.queries >= Self.packedAttentionQueries
        pool.run(tasks) { range in
            let scratch = AttentionScratch(shape: shape, packed: packed)
            defer { scratch.release() }
            for task in range {
                let item = task / shape.heads, head = task % shape.heads
                let kvHead = head / (shape.heads / shape.kvHeads)
                let qHead = q + item * shape.queryItemStride + head * shape.headSize
                let outHead = out + item * shape.outputItemStride + head * shape.headSize
                let kvOffset = (item * shape.kvItemStride + kvHead * shape.headSize) * shape.kvType.size
                let itemValid = valid.map { $0 + item * validItemStride }
                if packed {
                    packedHead(
                        q: qHead, k: k + kvOffset, v: v + kvOffset, out: outHead, valid: itemValid, shape: shape,
                        scratch: scratch)
                } else {
                    ck_attention_head(
                        qHead, shape.queryStride, Int32(shape.queries), k + kvOffset, v + kvOffset,
                        shape.kvType == .bf16 ? Int32(CK_BF16) : Int32(CK_F32), shape.kvStride, Int32(shape.keys),
                        Int32(shape.headSize), shape.scale, Int32(shape.limit), itemValid, outHead,
                        shape.outputStride, scratch.scores)
                }
            }
        }
    }

    /// Every segment's heads as tasks across the pool, each computed as `attention` computes that segment alone
    /// (the packed products from `packedAttentionQueries` of its queries, the direct loop below), into `out`
    /// (`[layout.rows, heads * headSize]`).
    public func segmentedAttention(
        q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, out: UnsafeMutablePointer<Float>,
        _ layout: SegmentedAttention
    ) {
        let width = layout.heads * layout.headSize
        let segments = layout.segments.filter { $0.queries > 0 }
        if !isFast {
            for segment in segments {
                let element = layout.kvType.size
                attention(
                    q: q + segment.queryRow * layout.queryStride, k: k + segment.keyRow * layout.kvStride * element,
                    v: v + segment.keyRow * layout.kvStride * element, out: out + segment.queryRow * width,
                    valid: nil, validItemStride: 0, shape: layout.shape(of: segment))
            }
            return
        }
        pool.run(segments.count * layout.heads) { range in
            for task in range {
                let segment = segments[task / layout.heads], head = task % layout.heads
                let shape = layout.shape(of: segment)
                let packed = shape.queries >= Self.packedAttentionQueries
                let scratch = AttentionScratch(shape: shape, packed: packed)
                defer { scratch.release() }
                let kvHead = head / (shape.heads / shape.kvHeads)
                let qHead = q + segment.queryRow * layout.queryStride + head * shape.headSize
                let outHead = out + segment.queryRow * width + head * shape.headSize
                let kvOffset = (segment.keyRow * layout.kvStride + kvHead * shape.headSize) * shape.kvType.size
                if packed {
                    packedHead(
                        q: qHead, k: k + kvOffset, v: v + kvOffset, out: outHead, valid: nil, shape: shape,
                        scratch: scratch)
                } else {
                    ck_attention_head(
                        qHead, shape.queryStride, Int32(shape.queries), k + kvOffset, v + kvOffset,
                        shape.kvType == .bf16 ? Int32(CK_BF16) : Int32(CK_F32), shape.kvStride, Int32(shape.keys),
                        Int32(shape.headSize), shape.scale, Int32(shape.limit), nil, outHead, shape.outputStride,
                        scratch.scores)
                }
            }
        }
    }

    /// One head of one item through the bf16 products: scores = q kᵀ, softmax, out = p v.
    private func packedHead(
        q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, out: UnsafeMutablePointer<Float>,
        valid: UnsafePointer<UInt8>?, shape: AttentionShape, scratch: AttentionScratch
    ) {
        let keys = shape.keys, size = shape.headSize
        let type = shape.kvType == .bf16 ? Int32(CK_BF16) : Int32(CK_F32)
        ck_pack_bf16(
            k, type, shape.kvStride, 1, Int32(keys), Int32(size), scratch.packedKeys, 0, Int32((keys + 31) / 32))
        ck_pack_bf16(
            v, type, 1, shape.kvStride, Int32(size), Int32(keys), scratch.packedValues, 0, Int32((size + 31) / 32))
        for start in stride(from: 0, to: shape.queries, by: Self.queryBlock) {
            let rows = min(Self.queryBlock, shape.queries - start)
            ck_rows_to_bf16(
                q + start * shape.queryStride, shape.queryStride, Int32(size), scratch.queryRows, scratch.sizePadded, 0,
                Int32(rows))
            ck_gemm_bf16(
                Int32(rows), Int32(keys), Int32(size), scratch.queryRows, scratch.sizePadded, scratch.packedKeys,
                scratch.scores, keys, 0, nil, 0, Int32((keys + 31) / 32))
            for t in 0..<rows {
                ck_softmax(scratch.scores + t * keys, Int32(keys), shape.scale, Int32(shape.limit + start + t), valid)
            }
            ck_rows_to_bf16(
                scratch.scores, keys, Int32(keys), scratch.probabilityRows, scratch.keysPadded, 0, Int32(rows))
            ck_gemm_bf16(
                Int32(rows), Int32(size), Int32(keys), scratch.probabilityRows, scratch.keysPadded,
                scratch.packedValues, out + start * shape.outputStride, shape.outputStride, 0, nil, 0,
                Int32((size + 31) / 32))
        }
    }

    /// The exact mode: two SGEMMs per head (OpenBLAS's threads), the mask applied in the softmax.
    private func attentionSGEMM(
        q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, out: UnsafeMutablePointer<Float>,
        valid: UnsafePointer<UInt8>?, validItemStride: Int, shape: AttentionShape
    ) {
        let queries = shape.queries, keys = shape.keys, size = shape.headSize
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: queries * keys)
        defer { scores.deallocate() }
        let keyFloats = k.assumingMemoryBound(to: Float.self), valueFloats = v.assumingMemoryBound(to: Float.self)
        for item in 0..<shape.items {
            for head in 0..<shape.heads {
                let kvHead = head / (shape.heads / shape.kvHeads)
                let kvOffset = item * shape.kvItemStride + kvHead * size
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(queries), Int32(keys), Int32(size), 1,
                    q + item * shape.queryItemStride + head * size, Int32(shape.queryStride), keyFloats + kvOffset,
                    Int32(shape.kvStride), 0, scores, Int32(keys))
                let itemValid = valid.map { $0 + item * validItemStride }
                for t in 0..<queries {
                    ck_softmax(scores + t * keys, Int32(keys), shape.scale, Int32(shape.limit + t), itemValid)
                }
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(queries), Int32(size), Int32(keys), 1, scores,
                    Int32(keys), valueFloats + kvOffset, Int32(shape.kvStride), 0,
                    out + item * shape.outputItemStride + head * size, Int32(shape.outputStride))
            }
        }
    }
}

/// Per-thread buffers for attention tasks.
private struct AttentionScratch {
    let sizePadded: Int, keysPadded: Int
    let scores: UnsafeMutablePointer<Float>
    let packedKeys: UnsafeMutablePointer<UInt16>
    let packedValues: UnsafeMutablePointer<UInt16>
    let queryRows: UnsafeMutablePointer<UInt16>
    let probabilityRows: UnsafeMutablePointer<UInt16>

    init(shape: AttentionShape, packed: Bool) {
        sizePadded = (shape.headSize + 1) / 2 * 2
        keysPadded = (shape.keys + 1) / 2 * 2
        let block = packed ? min(CPUBackend.queryBlock, shape.queries) : 1
        scores = .allocate(capacity: max(1, block * shape.keys))
        let packedCount = packed ? ck_packed_count(Int32(shape.keys), Int32(shape.headSize)) : 1
        let valuesCount = packed ? ck_packed_count(Int32(shape.headSize), Int32(shape.keys)) : 1
        packedKeys = .allocate(capacity: max(1, packedCount))
        packedValues = .allocate(capacity: max(1, valuesCount))
        queryRows = .allocate(capacity: packed ? block * sizePadded : 1)
        probabilityRows = .allocate(capacity: packed ? block * keysPadded : 1)
    }

    func release() {
        scores.deallocate()
        packedKeys.deallocate()
        packedValues.deallocate()
        queryRows.deallocate()
        probabilityRows.deallocate()
    }
}
