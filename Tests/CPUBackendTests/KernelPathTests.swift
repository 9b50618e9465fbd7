// The AVX-512 forms of packing and of the softmax's maximum give bit for bit what the portable loops give, on both
// source layouts, both source types, partial panels, odd k and the values where rounding differs (ties, NaN,
// infinities, subnormals).

import CKernels
import Testing

@Suite struct KernelPathTests {
    /// Values that probe bf16 rounding: ties to even both ways, a NaN, infinities, subnormals, signed zeros.
    static let edgeValues: [Float] = [
        Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), .nan, .infinity, -.infinity,
        Float(bitPattern: 0x0000_0001), -Float(bitPattern: 0x0040_0000), -0.0, 0, Float(bitPattern: 0x7f7f_ffff),
    ]

    /// ck_pack_bf16 of a [n, k] matrix read through (row stride, column stride), on one path.
    static func pack(
        _ values: [Float], type: Int32, rowStride: Int, columnStride: Int, n: Int, k: Int, portable: Bool
    ) -> [UInt16] {
        ck_force_portable(portable ? 1 : 0)
        defer { ck_force_portable(0) }
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
    func packingIsTheSameOnBothPaths(type: Int32, transposed: Bool) {
        for (n, k) in [(1, 1), (5, 2), (33, 45), (88, 67), (70, 130)] {
            // The source: [n, k] with rows `k + 3` apart, or Vᵀ-like with W's rows adjacent and columns `n + 5`
            // apart.
            let rowStride = transposed ? 1 : k + 3, columnStride = transposed ? n + 5 : 1
            var values = randomValues((transposed ? k * (n + 5) : n * (k + 3)), seed: UInt64(n * 1000 + k))
            for (index, value) in Self.edgeValues.enumerated() where index * 7 < values.count {
                values[index * 7] = value
            }
            let fast = Self.pack(
                values, type: type, rowStride: rowStride, columnStride: columnStride, n: n, k: k, portable: false)
            let portable = Self.pack(
                values, type: type, rowStride: rowStride, columnStride: columnStride, n: n, k: k, portable: true)
            let first = fast.indices.first { fast[$0] != portable[$0] }
            #expect(first == nil, "type \(type) transposed \(transposed) n \(n) k \(k): element \(first ?? 0) differs")
        }
    }

    @Test func softmaxIsTheSameOnBothPaths() {
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
                        let results = [false, true].map { portable in
                            Self.softmax(row, limit: limit, valid: mask, portable: portable)
                        }
                        let first = results[0].indices.first { results[0][$0] != results[1][$0] }
                        #expect(
                            first == nil,
                            "count \(count) peak \(peak) limit \(limit) masked \(mask != nil): element \(first ?? 0)")
                    }
                }
            }
        }
    }

    /// ck_softmax of `row` on one path, as bit patterns.
    static func softmax(_ row: [Float], limit: Int, valid: [UInt8]?, portable: Bool) -> [UInt32] {
        ck_force_portable(portable ? 1 : 0)
        defer { ck_force_portable(0) }
        var copy = row
        if let valid {
            ck_softmax(&copy, Int32(row.count), 0.7, Int32(limit), valid)
        } else {
            ck_softmax(&copy, Int32(row.count), 0.7, Int32(limit), nil)
        }
        return copy.map(\.bitPattern)
    }
}
