// Attention on the GPU: queries, keys, values and padding flags copied over (only the rows each item uses), one
// fused kernel for every query row, head and item, and the output copied back.

import Compute

extension CUDABackend {
    public func attention(
        q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, out: UnsafeMutablePointer<Float>,
        valid: UnsafePointer<UInt8>?, validItemStride: Int, shape: AttentionShape
    ) {
        guard shape.items > 0, shape.queries > 0 else { return }
        precondition(shape.headSize <= 512, "attention: head size \(shape.headSize) over 512")
        precondition(precision != .f32 || shape.kvType == .f32, "the f32 mode keeps keys and values in f32")
        let items = shape.items, width = shape.heads * shape.headSize
        let qCount = (items - 1) * shape.queryItemStride + (shape.queries - 1) * shape.queryStride + width
        let outCount = (items - 1) * shape.outputItemStride + (shape.queries - 1) * shape.outputStride + width
        let kvItem = shape.keys == 0 ? 0 : (shape.keys - 1) * shape.kvStride + shape.kvHeads * shape.headSize
        let kvCount = (items - 1) * shape.kvItemStride + kvItem
        let validCount = valid == nil ? 0 : (items - 1) * validItemStride + shape.keys
        let dense = shape.outputStride == width && shape.outputItemStride == shape.queries * width
        let sharedBytes = shape.keys * 4
        precondition(
            sharedBytes <= context.attentionSharedLimit,
            "attention over \(shape.keys) keys needs \(sharedBytes) bytes of shared memory; \(device) gives "
                + "\(context.attentionSharedLimit)")
        onDevice("attention") {
            let size = shape.kvType.size
            let qd = try context.scratch(Slot.input.rawValue, bytes: qCount * 4)
            try context.upload(q, bytes: qCount * 4, to: qd)
            let kd = try context.scratch(Slot.second.rawValue, bytes: max(kvCount, 1) * size)
            let vd = try context.scratch(Slot.third.rawValue, bytes: max(kvCount, 1) * size)
            // Only the rows each item uses: a decoder cache's items sit a whole capacity apart.
            for item in 0..<items where kvItem > 0 {
                let offset = item * shape.kvItemStride * size
                try context.upload(k + offset, bytes: kvItem * size, to: kd + UInt64(offset))
                try context.upload(v + offset, bytes: kvItem * size, to: vd + UInt64(offset))
            }
            var vf: UInt64 = 0
            if let valid {
                vf = try context.scratch(Slot.fourth.rawValue, bytes: validCount)
                try context.upload(valid, bytes: validCount, to: vf)
            }
            let od = try context.scratch(Slot.output.rawValue, bytes: outCount * 4)
            if !dense { try context.upload(out, bytes: outCount * 4, to: od) }
            try context.launch(
                shape.kvType == .bf16 ? "attention_bf16kv" : "attention_f32kv",
                grid: (shape.queries, shape.heads, items), block: 128, sharedBytes: sharedBytes,
                [
                    .pointer(qd), .pointer(kd), .pointer(vd), .pointer(od), .pointer(vf),
                    .int64(Int64(validItemStride)), .int32(Int32(shape.queries)), .int32(Int32(shape.keys)),
                    .int32(Int32(shape.heads)), .int32(Int32(shape.kvHeads)), .int32(Int32(shape.headSize)),
                    .float(shape.scale), .int32(Int32(shape.limit)), .int64(Int64(shape.queryStride)),
                    .int64(Int64(shape.queryItemStride)), .int64(Int64(shape.outputStride)),
                    .int64(Int64(shape.outputItemStride)), .int64(Int64(shape.kvStride)),
                    .int64(Int64(shape.kvItemStride)),
                ])
            try context.download(od, bytes: outCount * 4, into: out)
        }
    }
}
