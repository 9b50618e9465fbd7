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

/// A weight as bf16 panels of 32 output columns (see ckernels.h), packed once at load on every thread.
final class PackedBF16Matrix: PreparedMatrix, @unchecked Sendable {
    // Invariant: written only in init.
    let name: String
    let outFeatures: Int
    let inFeatures: Int
    let panels: UnsafeMutablePointer<UInt16>
    let count: Int
    /// Whether `panels` came from ck_alloc_pages (huge pages) rather than the heap.
    let mapped: Bool
    var ownedBytes: Int { mapped ? hugePages(count * 2) : count * 2 }
    var panelCount: Int { (outFeatures + 31) / 32 }

    init(_ weight: WeightTensor, pool: ThreadPool) {
        name = weight.name
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        count = ck_packed_count(Int32(outFeatures), Int32(inFeatures))
        if let pages = ck_alloc_pages(count * 2) {
            panels = pages.assumingMemoryBound(to: UInt16.self)
            mapped = true
        } else {
            panels = UnsafeMutablePointer<UInt16>.allocate(capacity: max(count, 1))
            mapped = false
        }
        let type = weight.dtype.kernelType
        let n = Int32(outFeatures), k = Int32(inFeatures), stride = inFeatures
        let source = weight.base, destination = panels
        pool.run((outFeatures + 31) / 32) { range in
            ck_pack_bf16(source, type, stride, 1, n, k, destination, Int32(range.lowerBound), Int32(range.upperBound))
        }
    }

    deinit {
        if mapped { ck_free_pages(panels, count * 2) } else { panels.deallocate() }
    }
}

/// A weight quantised to int8 panels with per-group scales and sums (see ckernels.h), at load on every thread.
final class PackedInt8Matrix: PreparedMatrix, @unchecked Sendable {
    // Invariant: written only in init.
    let name: String
    let outFeatures: Int
    let inFeatures: Int
    let values: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>
    let sums: UnsafeMutablePointer<Int32>
    let count: Int, scaleCount: Int
    let mapped: Bool
    var ownedBytes: Int { (mapped ? hugePages(count) : count) + scaleCount * 8 }
    var panelCount: Int { (outFeatures + 31) / 32 }

    init(_ weight: WeightTensor, pool: ThreadPool) {
        name = weight.name
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        count = ck_packed_int8_count(Int32(outFeatures), Int32(inFeatures))
        scaleCount = ck_packed_int8_scales(Int32(outFeatures), Int32(inFeatures))
        if let pages = ck_alloc_pages(count) {
            values = pages.assumingMemoryBound(to: Int8.self)
            mapped = true
        } else {
            values = UnsafeMutablePointer<Int8>.allocate(capacity: max(count, 1))
            mapped = false
        }
        scales = UnsafeMutablePointer<Float>.allocate(capacity: max(scaleCount, 1))
        sums = UnsafeMutablePointer<Int32>.allocate(capacity: max(scaleCount, 1))
        let type = weight.dtype.kernelType
        let n = Int32(outFeatures), k = Int32(inFeatures), stride = inFeatures
        let source = weight.base, destination = values, scaleDestination = scales, sumDestination = sums
        pool.run((outFeatures + 31) / 32) { range in
            ck_pack_int8(
                source, type, stride, 1, n, k, destination, scaleDestination, sumDestination,
                Int32(range.lowerBound), Int32(range.upperBound))
        }
    }

    deinit {
        if mapped { ck_free_pages(values, count) } else { values.deallocate() }
        scales.deallocate()
        sums.deallocate()
    }
}

/// Bytes that `ck_alloc_pages` holds for `bytes`: whole 2 MiB pages.
func hugePages(_ bytes: Int) -> Int {
    (max(bytes, 1) + (2 << 20) - 1) / (2 << 20) * (2 << 20)
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
