// Weight matrices in the two forms the CPU backend multiplies with.

import CKernels
import Compute
import Tensors

/// A weight kept as stored (memory-mapped, f32/f16/bf16), for the exact f32 mode: f32 weights are used in place,
/// others are widened a block of rows at a time in each product.
final class StoredMatrix: PreparedMatrix, @unchecked Sendable {
    let weight: WeightTensor
    var name: String { weight.name }
    var outFeatures: Int { weight.shape[0] }
    var inFeatures: Int { weight.shape[1] }
    var ownedBytes: Int { 0 }

    init(_ weight: WeightTensor) {
        self.weight = weight
    }
}

/// Memory for packed weights: huge pages where the system gives them (`ck_alloc_pages`), the heap otherwise.
final class PanelStorage: @unchecked Sendable {
    // Invariant: written only while the owning matrix is packed in its init.
    let pointer: UnsafeMutableRawPointer
    let bytes: Int
    private let mapped: Bool

    init(bytes: Int) {
        self.bytes = bytes
        if let pages = ck_alloc_pages(bytes) {
            pointer = pages
            mapped = true
        } else {
            pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
            mapped = false
        }
    }

    /// Bytes held: whole huge pages when mapped.
    var ownedBytes: Int { mapped ? ck_pages_length(bytes) : bytes }

    deinit {
        if mapped { ck_free_pages(pointer, bytes) } else { pointer.deallocate() }
    }
}

/// A weight as bf16 panels of 32 output columns (see ckernels.h), packed once at load on every thread.
final class PackedBF16Matrix: PreparedMatrix, @unchecked Sendable {
    // Invariant: written only in init.
    let name: String
    let outFeatures: Int
    let inFeatures: Int
    let storage: PanelStorage
    var panels: UnsafeMutablePointer<UInt16> { storage.pointer.assumingMemoryBound(to: UInt16.self) }
    var ownedBytes: Int { storage.ownedBytes }
    var panelCount: Int { (outFeatures + 31) / 32 }

    init(_ weight: WeightTensor, pool: ThreadPool) {
        name = weight.name
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        storage = PanelStorage(bytes: ck_packed_count(Int32(outFeatures), Int32(inFeatures)) * 2)
        let type = weight.dtype.kernelType
        let n = Int32(outFeatures), k = Int32(inFeatures), stride = inFeatures
        let source = weight.base, destination = panels
        pool.run(panelCount) { range in
            ck_pack_bf16(source, type, stride, 1, n, k, destination, Int32(range.lowerBound), Int32(range.upperBound))
        }
    }
}

/// A weight quantised to int8 panels with per-group scales and sums (see ckernels.h), at load on every thread.
final class PackedInt8Matrix: PreparedMatrix, @unchecked Sendable {
    // Invariant: written only in init.
    let name: String
    let outFeatures: Int
    let inFeatures: Int
    let storage: PanelStorage
    let scales: [Float]
    let sums: [Int32]
    var values: UnsafeMutablePointer<Int8> { storage.pointer.assumingMemoryBound(to: Int8.self) }
    var ownedBytes: Int { storage.ownedBytes + scales.count * 8 }
    var panelCount: Int { (outFeatures + 31) / 32 }

    init(_ weight: WeightTensor, pool: ThreadPool) {
        name = weight.name
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        storage = PanelStorage(bytes: ck_packed_int8_count(Int32(outFeatures), Int32(inFeatures)))
        let scaleCount = ck_packed_int8_scales(Int32(outFeatures), Int32(inFeatures))
        var scales = [Float](repeating: 0, count: scaleCount), sums = [Int32](repeating: 0, count: scaleCount)
        let type = weight.dtype.kernelType
        let n = Int32(outFeatures), k = Int32(inFeatures), stride = inFeatures
        let source = weight.base, destination = storage.pointer.assumingMemoryBound(to: Int8.self)
        let panelCount = (outFeatures + 31) / 32
        scales.withUnsafeMutableBufferPointer { scaleBuffer in
            sums.withUnsafeMutableBufferPointer { sumBuffer in
                let scaleDestination = scaleBuffer.baseAddress!, sumDestination = sumBuffer.baseAddress!
                pool.run(panelCount) { range in
                    ck_pack_int8(
                        source, type, stride, 1, n, k, destination, scaleDestination, sumDestination,
                        Int32(range.lowerBound), Int32(range.upperBound))
                }
            }
        }
        self.scales = scales
        self.sums = sums
    }
}

extension DType {
    /// The CKernels constant for this element type.
    var kernelType: Int32 {
        switch self {
        case .f32: Int32(CK_F32)
        case .bf16: Int32(CK_BF16)
        case .f16: Int32(CK_F16)
        }
    }
}
