// Attention on every path (exact SGEMM, packed bf16 products for many queries, the direct loop for few, f32 and
// bf16 keys) against a double-precision reference with causal limits, padding masks and grouped heads.

import CKernels
import CPUBackend
import Compute
import Foundation
import Tensors
import Testing

/// The reference: q [items, queries, heads * size], k and v [items, keys, kvHeads * size] as f32.
func referenceAttention(
    q: [Float], k: [Float], v: [Float], valid: [UInt8]?, items: Int, queries: Int, keys: Int, heads: Int,
    kvHeads: Int, size: Int, limit: Int
) -> [Float] {
    var out = [Float](repeating: 0, count: items * queries * heads * size)
    let scale = 1 / Double(size).squareRoot()
    for item in 0..<items {
        for head in 0..<heads {
            let kvHead = head / (heads / kvHeads)
            for t in 0..<queries {
                var scores = [Double](repeating: -.infinity, count: keys)
                for s in 0..<min(keys, limit + t) where valid == nil || valid![item * keys + s] != 0 {
                    var dot = 0.0
                    for i in 0..<size {
                        dot +=
                            Double(q[((item * queries + t) * heads + head) * size + i])
                            * Double(k[((item * keys + s) * kvHeads + kvHead) * size + i])
                    }
                    scores[s] = dot * scale
                }
                let maximum = scores.max()!
                guard maximum > -.infinity else { continue }
                let weights = scores.map { exp($0 - maximum) }
                let total = weights.reduce(0, +)
                for i in 0..<size {
                    var sum = 0.0
                    for s in 0..<keys {
                        sum += weights[s] / total * Double(v[((item * keys + s) * kvHeads + kvHead) * size + i])
                    }
                    out[((item * queries + t) * heads + head) * size + i] = Float(sum)
                }
            }
        }
    }
    return out
}

@Suite struct AttentionTests {
    struct Case: Sendable, CustomStringConvertible {
        let precision: ComputePrecision
        let kvType: KVElementType
        let queries: Int
        let keys: Int
        let causal: Bool
        var description: String { "\(precision) \(kvType) \(queries)x\(keys) causal=\(causal)" }
    }

    static let cases: [Case] = [
        Case(precision: .f32, kvType: .f32, queries: 37, keys: 37, causal: false),
        Case(precision: .f32, kvType: .f32, queries: 1, keys: 23, causal: true),
        Case(precision: .bf16, kvType: .f32, queries: 65, keys: 65, causal: false),
        Case(precision: .bf16, kvType: .bf16, queries: 300, keys: 300, causal: true),
        Case(precision: .bf16, kvType: .bf16, queries: 1, keys: 41, causal: true),
        Case(precision: .bf16, kvType: .bf16, queries: 3, keys: 41, causal: true),
    ]

    @Test(arguments: cases)
    func matchesTheReference(_ c: Case) {
        let items = 2, heads = 4, kvHeads = 2, size = 20
        let q = randomValues(items * c.queries * heads * size, seed: 1)
        var k = randomValues(items * c.keys * kvHeads * size, seed: 2)
        var v = randomValues(items * c.keys * kvHeads * size, seed: 3)
        if c.kvType == .bf16 {
            k = roundedToBF16(k)
            v = roundedToBF16(v)
        }
        var valid = [UInt8](repeating: 1, count: items * c.keys)
        for s in 0..<3 { valid[c.keys + s] = 0 }  // the second item is left-padded by three
        let limit = c.causal ? c.keys - c.queries + 1 : c.keys
        let expected = referenceAttention(
            q: c.precision == .bf16 && c.queries >= 16 ? roundedToBF16(q) : q, k: k, v: v, valid: valid,
            items: items, queries: c.queries, keys: c.keys, heads: heads, kvHeads: kvHeads, size: size, limit: limit)
        let shape = AttentionShape(
            items: items, queries: c.queries, keys: c.keys, heads: heads, kvHeads: kvHeads, headSize: size,
            scale: 1 / Float(size).squareRoot(), limit: limit, queryStride: heads * size,
            queryItemStride: c.queries * heads * size, outputStride: heads * size,
            outputItemStride: c.queries * heads * size, kvStride: kvHeads * size, kvItemStride: c.keys * kvHeads * size,
            kvType: c.kvType)
        let kBytes: [UInt8], vBytes: [UInt8]
        if c.kvType == .bf16 {
            kBytes = DType.bf16.encode(k)
            vBytes = DType.bf16.encode(v)
        } else {
            kBytes = DType.f32.encode(k)
            vBytes = DType.f32.encode(v)
        }
        var out = [Float](repeating: .nan, count: expected.count)
        let backend = CPUBackend(precision: c.precision, threads: 2)
        kBytes.withUnsafeBytes { keys in
            vBytes.withUnsafeBytes { values in
                backend.attention(
                    q: q, k: keys.baseAddress!, v: values.baseAddress!, out: &out, valid: valid,
                    validItemStride: c.keys, shape: shape)
            }
        }
        // The packed path rounds probabilities to bf16 before multiplying by values.
        let bound: Float = c.precision == .bf16 && c.queries >= 16 ? 1e-2 : 1e-5
        let error = relativeError(out, expected)
        #expect(error < bound, "\(c): \(error)")
    }
}
