// Every kernel set's packing and softmax maximum give bit for bit what the portable loops give, on both source
// layouts, both source types, partial panels, odd k and the values where rounding differs (ties, NaN, infinities,
// subnormals).

import CKernels
import Testing

@Suite struct KernelPathTests {
    /// Values that probe bf16 rounding: ties to even both ways, a NaN, infinities, subnormals, signed zeros.
    static let edgeValues: [Float] = [
        Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), .nan, .infinity, -.infinity,
        Float(bitPattern: 0x0000_0001), -Float(bitPattern: 0x0040_0000), -0.0, 0, Float(bitPattern: 0x7f7f_ffff),
    ]

    /// ck_pack_bf16 of a [n, k] matrix read through (row stride, column stride), with one kernel set.
    static func pack(
        _ values: [Float], type: Int32, rowStride: Int, columnStride: Int, n: Int, k: Int, set: Int32
    ) -> [UInt16] {
        ck_force_kernels(set)
        defer { ck_force_kernels(-1) }
        var packed = [UInt16](repeating: 0xdead, count: ck_packed_count(Int32(n), Int32(k)))
        let panels = Int32((n + 31) / 32)
        if type == CK_BF16 {
            let halves = values.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
            ck_pack_bf16(halves, type, rowStride, columnStride, Int32(n), Int32(k), &packed, 0, panels)
        } else {
            ck_pack_bf16(values, type, rowStride, columnStride, Int32(n), Int32(k), &packed, 0, panels)
        }
        return packed
    }

    @Test(arguments: [Int32(CK_F32), Int32(CK_BF16)], [false, true])
    func packingIsTheSameWithEveryKernelSet(type: Int32, transposed: Bool) {
        for (n, k) in [(1, 1), (5, 2), (33, 45), (88, 67), (70, 130)] {
            // The source: [n, k] with rows `k + 3` apart, or Vᵀ-like with W's rows adjacent and columns `n + 5`
            // apart.
            let rowStride = transposed ? 1 : k + 3, columnStride = transposed ? n + 5 : 1
            var values = randomValues((transposed ? k * (n + 5) : n * (k + 3)), seed: UInt64(n * 1000 + k))
            for (index, value) in Self.edgeValues.enumerated() where index * 7 < values.count {
                values[index * 7] = value
            }
            let portable = Self.pack(
                values, type: type, rowStride: rowStride, columnStride: columnStride, n: n, k: k,
                set: Int32(CK_KERNELS_PORTABLE))
            for set in runnableKernelSets {
                let packed = Self.pack(
                    values, type: type, rowStride: rowStride, columnStride: columnStride, n: n, k: k, set: set)
                let first = packed.indices.first { packed[$0] != portable[$0] }
                #expect(
                    first == nil,
                    "set \(set) type \(type) transposed \(transposed) n \(n) k \(k): element \(first ?? 0) differs")
            }
        }
    }

    @Test func softmaxIsTheSameWithEveryKernelSet() {
        for count in [1, 5, 16, 17, 40, 70] {
            let base = randomValues(count, seed: UInt64(count)).map { $0 * 20 }
            let valid = (0..<count).map { UInt8($0 % 3 == 1 ? 0 : 1) }
            // The largest score in each lane in turn (and once a NaN beside it), under every limit and mask.
            for peak in 0..<count {
                var row = base
                row[peak] = 25
                if count == 40 && peak == 7 { row[3] = .nan }
                for limit in [0, count / 2, count] {
                    for mask in [nil, valid] {
                        let portable = Self.softmax(row, limit: limit, valid: mask, set: Int32(CK_KERNELS_PORTABLE))
                        for set in runnableKernelSets {
                            let result = Self.softmax(row, limit: limit, valid: mask, set: set)
                            let first = result.indices.first { result[$0] != portable[$0] }
                            let masked = mask != nil
                            #expect(
                                first == nil,
                                "set \(set) count \(count) peak \(peak) limit \(limit) masked \(masked): \(first ?? 0)")
                        }
                    }
                }
            }
        }
    }

    @Test func activationRowsRoundAlikeWithEveryKernelSet() {
        for k in [1, 7, 16, 33, 130] {
            var values = randomValues(3 * (k + 2), seed: UInt64(k)).map { $0 * 1000 }
            // Subnormal activations are left out: AVX-512 BF16's vcvtne2ps2bf16 reads them as zero, where the
            // integer rounding of the other sets keeps them.
            for (index, value) in Self.edgeValues.enumerated() where index * 3 < values.count && !value.isSubnormal {
                values[index * 3] = value
            }
            let ldo = k + 1 + (k & 1)
            let results = [Int32(CK_KERNELS_PORTABLE)] + runnableKernelSets
            let rounded = results.map { set in
                withKernels(set) {
                    var out = [UInt16](repeating: 0xdead, count: 3 * ldo)
                    ck_rows_to_bf16(values, k + 2, Int32(k), &out, ldo, 0, 3)
                    return out
                }
            }
            for (index, out) in rounded.enumerated() {
                let first = out.indices.first { out[$0] != rounded[0][$0] }
                #expect(first == nil, "set \(results[index]) k \(k): element \(first ?? 0) differs")
            }
        }
    }

    /// ck_softmax of `row` with one kernel set, as bit patterns.
    static func softmax(_ row: [Float], limit: Int, valid: [UInt8]?, set: Int32) -> [UInt32] {
        ck_force_kernels(set)
        defer { ck_force_kernels(-1) }
        var copy = row
        if let valid {
            ck_softmax(&copy, Int32(row.count), 0.7, Int32(limit), valid)
        } else {
            ck_softmax(&copy, Int32(row.count), 0.7, Int32(limit), nil)
        }
        return copy.map(\.bitPattern)
    }
}
