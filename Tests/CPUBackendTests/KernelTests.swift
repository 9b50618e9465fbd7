// The CPU backend's kernels against plain double-precision loops: bf16 and int8 products on every kernel set this
// processor runs (AVX-512 BF16, AVX2 with and without AVX-VNNI, portable) with odd sizes and partial panels, the
// row kernels, rotary positions and every attention path.

import CKernels
import CPUBackend
import Compute
import Foundation
import Tensors
import Testing

/// Uniform values in [-1, 1) from a seed.
func randomValues(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float(Double(generator.next() >> 11) / Double(1 << 53) * 2 - 1) }
}

func roundedToBF16(_ values: [Float]) -> [Float] {
    values.map { Float(bitPattern: UInt32(DType.bfloat16Bits($0)) << 16) }
}

/// The kernel sets this processor runs, each of which the tests force in turn.
let runnableKernelSets: [Int32] = (0..<Int32(CK_KERNEL_SETS)).filter { ck_runs_kernels($0) != 0 }

/// `body` with kernel set `set` forced on the calling thread, for the kernels called directly.
func withKernels<T>(_ set: Int32, _ body: () throws -> T) rethrows -> T {
    ck_force_kernels(set)
    defer { ck_force_kernels(-1) }
    #expect(ck_kernels() == set, "kernel set \(set) is not the one in use")
    return try body()
}

/// Largest |a - b| over the largest |b|.
func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "\(actual.count) vs \(expected.count) values")
    let scale = max(expected.map(abs).max() ?? 0, 1e-30)
    return zip(actual, expected).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

/// x [m, k] times w [n, k] transposed, in double.
func referenceProduct(_ x: [Float], _ w: [Float], m: Int, n: Int, k: Int) -> [Float] {
    (0..<(m * n)).map { index in
        let i = index / n, j = index % n
        var sum = 0.0
        for c in 0..<k { sum += Double(x[i * k + c]) * Double(w[j * k + c]) }
        return Float(sum)
    }
}

@Suite struct KernelTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 33, 7), (3, 64, 130), (12, 32, 64), (13, 95, 257), (29, 70, 600), (40, 200, 1031),
        (1, 70, 1100), (2, 45, 520),  // decoding's whole-panel kernels over several k blocks, a partial panel
        (24, 70, 389), (17, 33, 1100),  // the few-row path's tiles over several k blocks, odd k, partial panels
        (197, 45, 520),  // more rows than one chunk
        (261, 40, 530),  // more rows than one AMX chunk, over two of its k blocks
    ]

    @Test(arguments: runnableKernelSets)
    func bf16ProductsMatchTheReference(set: Int32) throws {
        for (index, shape) in Self.shapes.enumerated() {
            let x = randomValues(shape.m * shape.k, seed: UInt64(index))
            let w = randomValues(shape.n * shape.k, seed: UInt64(100 + index))
            let bias = randomValues(shape.n, seed: UInt64(200 + index))
            let backend = CPUBackend(precision: .bf16, threads: 2, kernels: KernelSet(rawValue: set))
            #expect(backend.kernels.rawValue == set)
            let weight = OwnedBytes.tensor(name: "w", shape: [shape.n, shape.k], values: w, as: .f32)
            let layer = Linear(weight: weight, bias: bias, backend: backend)
            let actual = layer(x, rows: shape.m)
            var expected = referenceProduct(roundedToBF16(x), roundedToBF16(w), m: shape.m, n: shape.n, k: shape.k)
            for i in expected.indices { expected[i] += bias[i % shape.n] }
            let error = relativeError(actual, expected)
            #expect(error < 1e-5, "\(shape) kernels \(set): \(error)")
        }
    }

    /// A row's bf16 product has the same bits whichever path computes it: alone or among a decoding step's few rows
    /// (each panel streamed once over the whole of k) or among a prompt's many (blocked over k), with a bias or not;
    /// over several k blocks and over one (on AMX, sums kept in a buffer between blocks, or started and stored in
    /// place).
    @Test(arguments: runnableKernelSets)
    func bf16RowsHaveTheSameBitsAloneAndAmongFewOrManyRows(set: Int32) {
        for k in [1031, 389] {
            let n = 70, rows = 40
            let x = randomValues(rows * k, seed: 61)
            let weight = OwnedBytes.tensor(name: "w", shape: [n, k], values: randomValues(n * k, seed: 62), as: .f32)
            let layer = Linear(
                weight: weight, bias: randomValues(n, seed: 63),
                backend: CPUBackend(precision: .bf16, threads: 2, kernels: KernelSet(rawValue: set)))
            let many = layer(x, rows: rows)
            for m in [1, 8, 13, 24] {
                let few = layer(Array(x[0..<(m * k)]), rows: m)
                #expect(few == Array(many[0..<(m * n)]), "kernels \(set), k \(k): \(m) rows against \(rows)")
            }
        }
    }

    /// Rows of `values` ([rows, k]) quantised as the int8 mode does it, to weights and to activations alike: per
    /// row and group of 64, scale = max |v| / 127, values rounded to nearest even; returned as value x scale.
    static func int8Dequantised(_ values: [Float], rows: Int, k: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for row in 0..<rows {
            for start in stride(from: 0, to: k, by: 64) {
                let group = (start..<min(start + 64, k)).map { values[row * k + $0] }
                let scale = (group.map(abs).max() ?? 0) / 127
                for (offset, value) in group.enumerated() {
                    let q = scale > 0 ? min(127, max(-127, (value * (1 / scale)).rounded(.toNearestOrEven))) : 0
                    out[row * k + start + offset] = q * scale
                }
            }
        }
        return out
    }

    @Test(arguments: runnableKernelSets)
    func int8ProductsMatchTheDequantisedReference(set: Int32) throws {
        let shapes = Self.shapes + [(m: 2, n: 40, k: 1100), (m: 30, n: 64, k: 700)]  // several groups and blocks
        for (index, shape) in shapes.enumerated() {
            let x = randomValues(shape.m * shape.k, seed: UInt64(300 + index))
            let w = randomValues(shape.n * shape.k, seed: UInt64(400 + index))
            let bias = randomValues(shape.n, seed: UInt64(500 + index))
            let backend = CPUBackend(precision: .int8, threads: 2, kernels: KernelSet(rawValue: set))
            let weight = OwnedBytes.tensor(name: "w", shape: [shape.n, shape.k], values: w, as: .f32)
            let actual = Linear(weight: weight, bias: bias, backend: backend)(x, rows: shape.m)
            var expected = referenceProduct(
                Self.int8Dequantised(x, rows: shape.m, k: shape.k), Self.int8Dequantised(w, rows: shape.n, k: shape.k),
                m: shape.m, n: shape.n, k: shape.k)
            for i in expected.indices { expected[i] += bias[i % shape.n] }
            let error = relativeError(actual, expected)
            #expect(error < 1e-5, "\(shape) kernels \(set): \(error)")
            // Against the unquantised product: int8's own error, a few percent of the largest output at most.
            var exact = referenceProduct(x, w, m: shape.m, n: shape.n, k: shape.k)
            for i in exact.indices { exact[i] += bias[i % shape.n] }
            #expect(relativeError(actual, exact) < 3e-2, "\(shape): \(relativeError(actual, exact)) from unquantised")
        }
    }

    /// The AMX set's int8 products are the AVX-512 VNNI kernel's, bit for bit: the tiles' integer sums are exact, and
    /// they are scaled by the same operations in the same order. Shapes with partial groups, tiles and panels, more
    /// groups than one k block and more rows than one chunk.
    @Test(.enabled(if: KernelSet.amx.isRunnable))
    func amxInt8ProductsHaveTheVNNIKernelsBits() {
        let shapes = [
            (m: 16, n: 70, k: 1100), (m: 40, n: 64, k: 700), (m: 261, n: 45, k: 130), (m: 33, n: 96, k: 4162),
        ]
        for (index, shape) in shapes.enumerated() {
            let x = randomValues(shape.m * shape.k, seed: UInt64(700 + index))
            let w = randomValues(shape.n * shape.k, seed: UInt64(800 + index))
            let weight = OwnedBytes.tensor(name: "w", shape: [shape.n, shape.k], values: w, as: .f32)
            let products = [KernelSet.amx, .avx512BF16].map { set in
                Linear(weight: weight, bias: nil, backend: CPUBackend(precision: .int8, threads: 2, kernels: set))(
                    x, rows: shape.m)
            }
            #expect(products[0] == products[1], "\(shape)")
        }
    }

    @Test(arguments: [ComputePrecision.bf16, .int8])
    func aNaNInTheInputReachesTheOutputRow(_ precision: ComputePrecision) {
        var x = randomValues(3 * 130, seed: 31)
        x[130 + 7] = .nan
        let weight = OwnedBytes.tensor(name: "w", shape: [40, 130], values: randomValues(40 * 130, seed: 32))
        let y = Linear(weight: weight, bias: nil, backend: CPUBackend(precision: precision, threads: 2))(x, rows: 3)
        #expect(y[0..<40].allSatisfy { $0.isFinite } && y[80..<120].allSatisfy { $0.isFinite })
        #expect(y[40..<80].allSatisfy { $0.isNaN })
    }

    @Test(arguments: [DType.bf16, .f16])
    func theExactModeMultipliesStoredHalvesInF32(_ type: DType) {
        // Few rows (decoding) take the widen-in-registers path, many rows the OpenBLAS one; both are f32 products.
        for m in [1, 5, 20] {
            let k = 1500, n = 37
            let w = randomValues(n * k, seed: 41)
            let weight = OwnedBytes.tensor(name: "w", shape: [n, k], values: w, as: type)
            let stored = type == .bf16 ? roundedToBF16(w) : w.map { Float(Float16($0)) }
            let x = randomValues(m * k, seed: 42)
            let actual = Linear(weight: weight, bias: nil, backend: CPUBackend(precision: .f32, threads: 2))(
                x, rows: m)
            let error = relativeError(actual, referenceProduct(x, stored, m: m, n: n, k: k))
            #expect(error < 1e-5, "\(type) m=\(m): \(error)")
        }
    }

    @Test func bf16WeightsOfEveryStoredTypePackAlike() {
        let w = roundedToBF16(randomValues(40 * 90, seed: 7))
        let x = randomValues(5 * 90, seed: 8)
        let backend = CPUBackend(precision: .bf16, threads: 1)
        let outputs = [DType.f32, .bf16, .f16].map { type in
            Linear(
                weight: OwnedBytes.tensor(name: "w", shape: [40, 90], values: w, as: type), bias: nil, backend: backend)(
                    x, rows: 5)
        }
        // bf16-representable values survive f16 only approximately; f32 and bf16 storage pack identically.
        #expect(outputs[0] == outputs[1])
        #expect(relativeError(outputs[2], outputs[0]) < 1e-2)
    }

    @Test func threadCountDoesNotChangeResults() {
        let x = randomValues(37 * 300, seed: 3), w = randomValues(150 * 300, seed: 4)
        let weight = OwnedBytes.tensor(name: "w", shape: [150, 300], values: w, as: .bf16)
        let one = Linear(weight: weight, bias: nil, backend: CPUBackend(precision: .bf16, threads: 1))(x, rows: 37)
        let two = Linear(weight: weight, bias: nil, backend: CPUBackend(precision: .bf16, threads: 2))(x, rows: 37)
        #expect(one == two)
    }

    @Test(arguments: [ComputePrecision.f32, .bf16])
    func rowKernelsMatchTheReference(precision: ComputePrecision) {
        let backend = CPUBackend(precision: precision, threads: 2)
        let width = 77, rows = 9
        let x = randomValues(rows * width, seed: 11).map { $0 * 3 }
        let weight = randomValues(width, seed: 12), bias = randomValues(width, seed: 13)
        var layerNorm = [Float](), rmsNorm = [Float]()
        for row in 0..<rows {
            let values = x[(row * width)..<((row + 1) * width)].map(Double.init)
            let mean = values.reduce(0, +) / Double(width)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)
            let meanSquare = values.map { $0 * $0 }.reduce(0, +) / Double(width)
            for i in 0..<width {
                layerNorm.append(
                    Float((values[i] - mean) / (variance + 1e-6).squareRoot() * Double(weight[i]) + Double(bias[i])))
                rmsNorm.append(Float(values[i] / (meanSquare + 1e-5).squareRoot() * Double(weight[i])))
            }
        }
        #expect(
            relativeError(backend.layerNorm(x, width: width, weight: weight, bias: bias, epsilon: 1e-6), layerNorm)
                < 1e-6)
        #expect(relativeError(backend.rmsNorm(x, width: width, weight: weight, epsilon: 1e-5), rmsNorm) < 1e-6)

        var gelu = x
        backend.gelu(&gelu)
        let geluReference = x.map { Float(0.5 * Double($0) * (1 + erf(Double($0) / 2.0.squareRoot()))) }
        #expect(zip(gelu, geluReference).allSatisfy { abs($0 - $1) < 3e-7 * max(1, abs($1)) })

        var gate = x
        let up = randomValues(x.count, seed: 14)
        backend.siluMultiply(&gate, up)
        let siluReference = zip(x, up).map { Float(Double($0) / (1 + exp(-Double($0))) * Double($1)) }
        #expect(relativeError(gate, siluReference) < 1e-6)

        var sum = x
        backend.add(&sum, up)
        #expect(sum == zip(x, up).map { $0 + $1 })
    }

    @Test func softmaxHonoursLimitAndMask() {
        var row: [Float] = [1, 2, .infinity, 3, 4, 5]
        let valid: [UInt8] = [1, 0, 0, 1, 1, 1]
        ck_softmax(&row, 6, 0.5, 4, valid)
        let e0 = exp(0.5), e3 = exp(1.5)
        #expect(abs(Double(row[0]) - e0 / (e0 + e3)) < 1e-6)
        #expect(row[1] == 0 && row[2] == 0 && row[4] == 0 && row[5] == 0)
        var hidden: [Float] = [1, 2]
        ck_softmax(&hidden, 2, 1, 2, [0, 0])
        #expect(hidden == [0, 0])
    }

    @Test func rotaryMatchesTheRotateHalfFormula() {
        let heads = 3, size = 8, positions = [0, 5, 17]
        let x = randomValues(positions.count * heads * size, seed: 21)
        let frequencies = (0..<(size / 2)).map { 1 / powf(10_000, Float(2 * $0) / Float(size)) }
        var rotated = x
        CPUBackend(precision: .f32, threads: 2).rotary(
            &rotated, heads: heads, headSize: size, positions: positions, inverseFrequencies: frequencies)
        for (row, position) in positions.enumerated() {
            for head in 0..<heads {
                let base = (row * heads + head) * size
                for i in 0..<(size / 2) {
                    let angle = Double(Float(position) * frequencies[i])
                    let a = Double(x[base + i]), b = Double(x[base + size / 2 + i])
                    #expect(abs(Double(rotated[base + i]) - (a * cos(angle) - b * sin(angle))) < 1e-5)
                    #expect(abs(Double(rotated[base + size / 2 + i]) - (b * cos(angle) + a * sin(angle))) < 1e-5)
                }
            }
        }
    }
}
