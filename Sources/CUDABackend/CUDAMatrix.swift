// A weight matrix held on the GPU: bf16 for the fast mode, f32 for the exact mode, uploaded once at load.

import CCUDA
import Compute
import Tensors

/// `[out, in]` row-major on the GPU.
final class CUDAMatrix: PreparedMatrix, Sendable {
    let name: String
    let outFeatures: Int
    let inFeatures: Int
    /// CCUDA_BF16 or CCUDA_F32.
    let type: Int32
    let pointer: UInt64
    /// Why the upload failed (the pointer is then 0); the backend's `checkLoaded` reports the first.
    let failure: String?
    private let context: CUDAContext

    var ownedBytes: Int { 0 }
    var deviceBytes: Int { outFeatures * inFeatures * (type == Int32(CCUDA_BF16) ? 2 : 4) }

    init(_ weight: WeightTensor, bf16: Bool, context: CUDAContext) {
        name = weight.name
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        type = Int32(bf16 ? CCUDA_BF16 : CCUDA_F32)
        self.context = context
        let count = weight.count, elementSize = bf16 ? 2 : 4
        do {
            pointer = try context.exclusive {
                let pointer = try context.allocate(count * elementSize)
                do {
                    try Self.upload(weight, bf16: bf16, to: pointer, context: context)
                } catch {
                    context.deallocate(pointer)
                    throw error
                }
                return pointer
            }
            failure = nil
        } catch {
            pointer = 0
            failure = "\(weight.name) \(weight.shape): \(error)"
        }
    }

    deinit {
        if pointer != 0 { context.exclusive { context.deallocate(pointer) } }
    }

    /// Copies the stored values, converted where the stored type differs, a block at a time.
    private static func upload(_ weight: WeightTensor, bf16: Bool, to pointer: UInt64, context: CUDAContext) throws {
        let count = weight.count
        if bf16 && weight.dtype == .bf16 {
            try context.upload(weight.base, bytes: count * 2, to: pointer)
            return
        }
        if !bf16, let values = weight.f32Pointer {
            try context.upload(values, bytes: count * 4, to: pointer)
            return
        }
        let block = 1 << 22
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: min(block, count))
        let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: bf16 ? min(block, count) : 1)
        defer {
            floats.deallocate()
            halves.deallocate()
        }
        for start in stride(from: 0, to: count, by: block) {
            let range = start..<min(start + block, count)
            weight.convert(range, into: floats)
            if bf16 {
                for i in 0..<range.count { halves[i] = DType.bfloat16Bits(floats[i]) }
                try context.upload(halves, bytes: range.count * 2, to: pointer + UInt64(start * 2))
            } else {
                try context.upload(floats, bytes: range.count * 4, to: pointer + UInt64(start * 4))
            }
        }
    }
}
