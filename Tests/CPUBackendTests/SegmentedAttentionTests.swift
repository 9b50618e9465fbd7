// Segmented attention on the CPU: every segment's rows bit for bit what attention over that segment alone gives
// (both paths: the packed products from 16 queries, the direct loop below), and close to the reference.

import CPUBackend
import Compute
import Foundation
import Tensors
import TestSupport
import Testing

@Suite struct SegmentedAttentionTests {
    /// Decoding rows, a short chunk, a long causal chunk and a chunk continuing a sequence, scattered over the
    /// key memory as a scheduler's regions are.
    static let segments = [
        AttentionSegment(queryRow: 0, queries: 1, keyRow: 64, keys: 37, limit: 37),
        AttentionSegment(queryRow: 1, queries: 1, keyRow: 0, keys: 5, limit: 5),
        AttentionSegment(queryRow: 2, queries: 7, keyRow: 112, keys: 20, limit: 14),
        AttentionSegment(queryRow: 9, queries: 24, keyRow: 144, keys: 24, limit: 1),
        AttentionSegment(queryRow: 33, queries: 18, keyRow: 176, keys: 40, limit: 23),
    ]

    static func inputs(seed: UInt64) -> (q: [Float], k: [Float], v: [Float]) {
        var random = SplitMix64(seed: seed)
        func values(_ count: Int) -> [Float] {
            (0..<count).map { _ in Float(Double(random.next() >> 11) / Double(1 << 53) * 2 - 1) }
        }
        return (values(51 * 8 * 16), values(256 * 2 * 16), values(256 * 2 * 16))
    }

    @Test(arguments: [ComputePrecision.f32, .bf16, .int8])
    func eachSegmentIsWhatItGivesAlone(_ precision: ComputePrecision) {
        let backend = CPUBackend(precision: precision, threads: 2)
        let (q, k, v) = Self.inputs(seed: 5)
        let kvType = backend.kvElementType
        func stored(_ values: [Float]) -> ComputeBuffer {
            var out = backend.zeros(values.count, kvType)
            backend.copy(backend.buffer(values), into: &out, runs: [(0, 0)], length: values.count)
            return out
        }
        let layout = SegmentedAttention(
            heads: 8, kvHeads: 2, headSize: 16, scale: 0.25, queryStride: 128, kvStride: 32, kvType: kvType,
            segments: Self.segments)
        let together = backend.values(
            backend.segmentedAttention(q: backend.buffer(q), k: stored(k), v: stored(v), layout))
        let bySegment = backend.values(
            backend.segmentedAttentionBySegment(q: backend.buffer(q), k: stored(k), v: stored(v), layout))
        #expect(together.count == 51 * 128)
        #expect(together.map(\.bitPattern) == bySegment.map(\.bitPattern))
        // And right: each segment against the double-precision reference.
        for segment in Self.segments {
            let rows = segment.queryRow..<(segment.queryRow + segment.queries)
            let keys = segment.keyRow..<(segment.keyRow + segment.keys)
            let expected = referenceAttention(
                q: Array(q[(rows.lowerBound * 128)..<(rows.upperBound * 128)]),
                k: Array(k[(keys.lowerBound * 32)..<(keys.upperBound * 32)]),
                v: Array(v[(keys.lowerBound * 32)..<(keys.upperBound * 32)]), valid: nil, items: 1,
                queries: segment.queries, keys: segment.keys, heads: 8, kvHeads: 2, size: 16, limit: segment.limit)
            let actual = Array(together[(rows.lowerBound * 128)..<(rows.upperBound * 128)])
            let scale = expected.map(abs).max()!
            let error = zip(actual, expected).map { abs($0 - $1) }.max()! / scale
            #expect(error < (precision == .f32 ? 1e-5 : 2e-2), "\(segment): \(error)")
        }
    }
}
