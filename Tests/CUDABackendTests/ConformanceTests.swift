// Each operation of the CUDA backend against the CPU backend on the same inputs, in the exact (f32) and fast (bf16)
// modes: products (odd shapes, bias), row kernels, rotary positions and attention (full, causal, padded, grouped
// heads, strided items, f32 and bf16 keys). They run where an NVIDIA GPU is present and are skipped elsewhere.
//
// Tolerances (largest error over largest value): f32 1e-5 (the same arithmetic, another summation order); bf16
// products 1e-4 (both round activations to bf16 and accumulate in f32); bf16 GELU 1e-4 (the CPU's fast mode uses
// a polynomial erf); bf16 attention 2e-2 (with many queries both round queries, keys and probabilities to bf16 for
// their products, each in its own order and blocking).

import CPUBackend
import CUDABackend
import Compute
import Foundation
import Tensors
import Testing

enum GPU {
    static let backends: [ComputePrecision: Result<CUDABackend, Error>] = [
        .f32: Result { try CUDABackend(precision: .f32) }, .bf16: Result { try CUDABackend(precision: .bf16) },
    ]
    static var available: Bool { (try? backends[.f32]!.get()) != nil }

    static func pair(_ precision: ComputePrecision) throws -> (gpu: CUDABackend, cpu: CPUBackend) {
        (try backends[precision]!.get(), CPUBackend(precision: precision, threads: 2))
    }
}

func values(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float(Double(generator.next() >> 11) / Double(1 << 53) * 2 - 1) }
}

/// Largest |a - b| over the largest |b|.
func error(_ actual: [Float], _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "\(actual.count) vs \(expected.count) values")
    let scale = max(expected.map(abs).max() ?? 0, 1e-30)
    return zip(actual, expected).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

@Suite(.enabled(if: GPU.available, "needs an NVIDIA GPU, its driver, NVRTC and cuBLAS"))
struct ConformanceTests {
    static let precisions: [ComputePrecision] = [.f32, .bf16]

    @Test(arguments: precisions)
    func productsMatchTheCPU(_ precision: ComputePrecision) throws {
        let (gpu, cpu) = try GPU.pair(precision)
        for (index, (m, n, k)) in [
            (1, 1, 1), (1, 33, 7), (3, 64, 130), (13, 95, 257), (40, 200, 1031), (257, 384, 640),
        ]
        .enumerated() {
            let x = values(m * k, seed: UInt64(index)), bias = values(n, seed: UInt64(50 + index))
            let weight = OwnedBytes.tensor(
                name: "w", shape: [n, k], values: values(n * k, seed: UInt64(100 + index)), as: .bf16)
            let actual = Linear(weight: weight, bias: bias, backend: gpu)(x, rows: m)
            let expected = Linear(weight: weight, bias: bias, backend: cpu)(x, rows: m)
            let e = error(actual, expected)
            #expect(e < (precision == .f32 ? 1e-5 : 1e-4), "\(precision) \(m)x\(n)x\(k): \(e)")
        }
    }

    @Test(arguments: precisions)
    func rowKernelsMatchTheCPU(_ precision: ComputePrecision) throws {
        let (gpu, cpu) = try GPU.pair(precision)
        let width = 1408, rows = 7
        let x = values(rows * width, seed: 1).map { $0 * 3 + 0.5 }, y = values(rows * width, seed: 2)
        let w = values(width, seed: 3), b = values(width, seed: 4)
        let tolerance: Float = 1e-5
        #expect(
            error(
                gpu.layerNorm(x, width: width, weight: w, bias: b, epsilon: 1e-6),
                cpu.layerNorm(x, width: width, weight: w, bias: b, epsilon: 1e-6)) < tolerance)
        #expect(
            error(
                gpu.rmsNorm(x, width: width, weight: w, epsilon: 1e-6),
                cpu.rmsNorm(x, width: width, weight: w, epsilon: 1e-6)) < tolerance)
        var (g1, c1) = (x, x)
        gpu.gelu(&g1)
        cpu.gelu(&c1)
        #expect(error(g1, c1) < (precision == .f32 ? tolerance : 1e-4), "gelu")
        var (g2, c2) = (x, x)
        gpu.siluMultiply(&g2, y)
        cpu.siluMultiply(&c2, y)
        #expect(error(g2, c2) < tolerance, "siluMultiply")
        var (g3, c3) = (x, x)
        gpu.add(&g3, y)
        cpu.add(&c3, y)
        #expect(g3 == c3, "add")
        var (g4, c4) = (x, x)
        gpu.addBias(&g4, width: width, bias: b)
        cpu.addBias(&c4, width: width, bias: b)
        #expect(g4 == c4, "addBias")
    }

    @Test(arguments: precisions)
    func rotaryMatchesTheCPU(_ precision: ComputePrecision) throws {
        let (gpu, cpu) = try GPU.pair(precision)
        let heads = 4, size = 128
        let positions = [0, 1, 5, 300, 2047, 4095]
        let frequencies: [Float] = (0..<(size / 2)).map { i in
            let exponent = Double(2 * i) / Double(size)
            return Float(1 / Foundation.pow(10000.0, exponent))
        }
        var (g, c) = (values(positions.count * heads * size, seed: 9), values(positions.count * heads * size, seed: 9))
        gpu.rotary(&g, heads: heads, headSize: size, positions: positions, inverseFrequencies: frequencies)
        cpu.rotary(&c, heads: heads, headSize: size, positions: positions, inverseFrequencies: frequencies)
        #expect(error(g, c) < 1e-5)
    }

    struct Case: Sendable, CustomStringConvertible {
        let items, queries, keys, heads, kvHeads, size: Int
        let causal, padded: Bool
        var description: String {
            "\(items)x\(queries)q/\(keys)k h\(heads)/\(kvHeads) d\(size) causal=\(causal) padded=\(padded)"
        }
    }

    static let cases = [
        Case(items: 2, queries: 37, keys: 37, heads: 4, kvHeads: 4, size: 88, causal: false, padded: false),
        Case(items: 3, queries: 20, keys: 20, heads: 4, kvHeads: 2, size: 64, causal: true, padded: true),
        Case(items: 2, queries: 1, keys: 300, heads: 8, kvHeads: 8, size: 128, causal: true, padded: true),
        Case(items: 1, queries: 1025, keys: 1025, heads: 2, kvHeads: 2, size: 88, causal: false, padded: false),
    ]

    @Test(arguments: precisions, cases)
    func attentionMatchesTheCPU(_ precision: ComputePrecision, _ c: Case) throws {
        let (gpu, cpu) = try GPU.pair(precision)
        let kvType = gpu.kvElementType
        let width = c.heads * c.size, kvWidth = c.kvHeads * c.size
        // Keys sit in a cache of capacity keys + 5 per item, as the decoder keeps them.
        let capacity = c.keys + 5
        let q = values(c.items * c.queries * width, seed: 11)
        let keys = values(c.items * capacity * kvWidth, seed: 12), vals = values(c.items * capacity * kvWidth, seed: 13)
        var valid = [UInt8](repeating: 1, count: c.items * c.keys)
        if c.padded {
            for item in 0..<c.items { for s in 0..<(item * 3) where s < c.keys { valid[item * c.keys + s] = 0 } }
        }
        let shape = AttentionShape(
            items: c.items, queries: c.queries, keys: c.keys, heads: c.heads, kvHeads: c.kvHeads, headSize: c.size,
            scale: 1 / Float(c.size).squareRoot(), limit: c.causal ? c.keys - c.queries + 1 : c.keys,
            queryStride: width, queryItemStride: c.queries * width, outputStride: width,
            outputItemStride: c.queries * width, kvStride: kvWidth, kvItemStride: capacity * kvWidth, kvType: kvType)
        func run(_ backend: any ComputeBackend) -> [Float] {
            // Keys and values stored as the cache stores them: converted from f32 by `copy`.
            func stored(_ values: [Float]) -> ComputeBuffer {
                var out = backend.zeros(values.count, kvType)
                backend.copy(backend.buffer(values), into: &out, runs: [(0, 0)], length: values.count)
                return out
            }
            return backend.values(
                backend.attention(
                    q: backend.buffer(q), k: stored(keys), v: stored(vals), offsets: (0, 0, 0),
                    valid: c.padded ? valid : nil, validItemStride: c.keys, shape: shape))
        }
        let e = error(run(gpu), run(cpu))
        #expect(e < (precision == .f32 ? 1e-5 : 2e-2), "\(c): \(e)")
    }

    @Test(arguments: precisions)
    func segmentedAttentionMatchesTheCPU(_ precision: ComputePrecision) throws {
        let (gpu, cpu) = try GPU.pair(precision)
        let kvType = gpu.kvElementType
        // Decoding rows, a short chunk and a long causal chunk continuing a sequence, scattered over the memory.
        let layout = SegmentedAttention(
            heads: 8, kvHeads: 2, headSize: 64, scale: 0.125, queryStride: 512, kvStride: 128, kvType: kvType,
            segments: [
                AttentionSegment(queryRow: 0, queries: 1, keyRow: 300, keys: 37, limit: 37),
                AttentionSegment(queryRow: 1, queries: 7, keyRow: 0, keys: 20, limit: 14),
                AttentionSegment(queryRow: 8, queries: 40, keyRow: 100, keys: 60, limit: 21),
            ])
        let q = values(48 * 512, seed: 21), keys = values(400 * 128, seed: 22), vals = values(400 * 128, seed: 23)
        func run(_ backend: any ComputeBackend) -> [Float] {
            func stored(_ values: [Float]) -> ComputeBuffer {
                var out = backend.zeros(values.count, kvType)
                backend.copy(backend.buffer(values), into: &out, runs: [(0, 0)], length: values.count)
                return out
            }
            return backend.values(
                backend.segmentedAttention(q: backend.buffer(q), k: stored(keys), v: stored(vals), layout))
        }
        let e = error(run(gpu), run(cpu))
        #expect(e < (precision == .f32 ? 1e-5 : 2e-2), "segmented: \(e)")
    }

    @Test(arguments: precisions)
    func rowMovesAndPoolingMatchTheCPU(_ precision: ComputePrecision) throws {
        let (gpu, cpu) = try GPU.pair(precision)
        let width = 24, x = values(40 * width, seed: 21)
        let rows = [39, 0, 7, 7, 12]
        #expect(
            gpu.values(gpu.gatherRows(gpu.buffer(x), width: width, rows: rows))
                == cpu.values(cpu.gatherRows(cpu.buffer(x), width: width, rows: rows)))
        let images = [values(3 * 28 * 28, seed: 23), values(3 * 28 * 28, seed: 24)]
        #expect(
            gpu.values(gpu.patchRows(images, size: 28, patch: 14))
                == cpu.values(cpu.patchRows(images, size: 28, patch: 14)))
        // Two images of a 6 x 6 grid (plus cls) pooled to 3 x 3, as the pool-adapter does.
        let grid = 6, features = values(2 * (1 + grid * grid) * width, seed: 22)
        #expect(
            gpu.values(gpu.averagePool(gpu.buffer(features), images: 2, grid: grid, pool: 3, width: width))
                == cpu.values(cpu.averagePool(cpu.buffer(features), images: 2, grid: grid, pool: 3, width: width)))
        // f32 into the cache type and back out: the same bits on both.
        // Destinations never overlap (the GPU copies runs in parallel); sources may.
        let runs = [(from: 0, to: 60), (from: 100, to: 0), (from: 50, to: 200)]
        func moved(_ backend: any ComputeBackend) -> [Float] {
            var cache = backend.zeros(300, backend.kvElementType)
            backend.copy(backend.buffer(x), into: &cache, runs: runs, length: 40)
            var again = backend.zeros(300, backend.kvElementType)
            backend.copy(cache, into: &again, runs: [(from: 0, to: 1), (from: 150, to: 250)], length: 49)
            return backend.values(cache) + backend.values(again)
        }
        #expect(moved(gpu) == moved(cpu))
    }

    @Test func buffersAreCopiedBeforeAnInPlaceWrite() throws {
        let gpu = try GPU.backends[.f32]!.get()
        let original = gpu.buffer([1, 2, 3])
        var sum = original
        gpu.add(&sum, gpu.buffer([10, 10, 10]))
        #expect(gpu.values(sum) == [11, 12, 13])
        #expect(gpu.values(original) == [1, 2, 3], "the shared buffer was written")
    }

    @Test func int8IsRefusedWithTheReason() {
        #expect {
            try CUDABackend(precision: .int8)
        } throws: { error in
            "\(error)".contains("int8 runs on the CPU only")
        }
    }
}
