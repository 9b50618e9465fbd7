// The CPU implementation of the compute seam: f32 products through OpenBLAS (the exact mode), bf16 or int8 products
// through the kernels of CKernels (the fast modes: AVX-512 BF16, AVX2 or portable, chosen at run time; KernelSet),
// and vectorised row kernels, all on one pool.

import CKernels
import COpenBLAS
import Compute
import Tensors

/// Computes on this machine's cores.
public struct CPUBackend: ComputeBackend {
    public let precision: ComputePrecision
    public let pool: ThreadPool

    /// Elements of work below which a kernel runs on the calling thread alone.
    static let parallelElements = 1 << 15

    /// - Parameters:
    ///   - precision: f32 (exact), bf16 or int8 (fast).
    ///   - threads: cores for the pool every kernel runs on (OpenBLAS's own threads: `useOpenBLASThreads`).
    ///   - kernels: the most capable kernel set to use (nil: the best this processor runs).
    public init(precision: ComputePrecision, threads: Int, kernels: KernelSet? = nil) {
        self.precision = precision
        pool = ThreadPool(threads: threads, kernels: kernels)
        _ = KernelSet.best  // the choice between the AVX-512 sets is measured here, before any product runs
    }

    /// The kernel set this backend's bf16 and int8 products run with.
    public var kernels: KernelSet { KernelSet.chosen(limit: pool.kernels) }

    public var kvElementType: KVElementType { precision == .f32 ? .f32 : .bf16 }

    /// The int8 and bf16 modes share activations, attention and row kernels; only the weights differ.
    var isFast: Bool { precision != .f32 }

    /// "cpu bf16, 2 threads, kernels avx2 (...; this processor lacks AVX-512 BF16)": the mode and the kernels in use,
    /// and why those.
    public var summary: String {
        "cpu \(precision.rawValue), \(pool.threads) threads, "
            + (precision == .f32 ? "OpenBLAS sgemm" : "kernels \(KernelSet.explanation(limit: pool.kernels))")
    }

    public var arithmetic: String {
        "cpu \(precision.rawValue) " + (precision == .f32 ? "openblas sgemm" : kernels.description)
    }

    /// OpenBLAS's own threads (the f32 mode's products): a setting of the whole process, made once by the program
    /// that chooses the backend, not by each backend.
    public static func useOpenBLASThreads(_ threads: Int) {
        openblas_set_num_threads(Int32(max(1, threads)))
    }

    public func prepare(_ weight: WeightTensor) -> any PreparedMatrix {
        precondition(weight.shape.count == 2, "\(weight.name): a matrix is 2-D, not \(weight.shape)")
        switch precision {
        case .f32: return StoredMatrix(weight)
        case .bf16: return PackedBF16Matrix(weight, pool: pool)
        case .int8: return PackedInt8Matrix(weight, pool: pool)
        }
    }

    /// `x` `[rows, in]` times the weight's transpose, plus `bias`, on host arrays.
    public func linear(_ x: [Float], rows: Int, weight: any PreparedMatrix, bias: [Float]?) -> [Float] {
        let n = weight.outFeatures
        // The kernels read n bias values and k inputs a row, and write every output only when k > 0.
        precondition(
            bias.map { $0.count == n } ?? true, "\(weight.name): a bias of \(bias?.count ?? 0) for \(n) outputs")
        precondition(
            weight.inFeatures > 0 && x.count >= rows * weight.inFeatures,
            "\(weight.name): \(x.count) inputs for \(rows) rows")
        var y: [Float]
        switch weight {
        case let packed as PackedBF16Matrix:
            // The bias starts the kernel's sums: no pass of its own over the output.
            return bias.withOptionalPointer { bias in
                productBF16(x, rows: rows, n: n, k: packed.inFeatures, panels: packed.panelCount) { a, lda, c, range in
                    ck_gemm_bf16(
                        Int32(rows), Int32(n), Int32(packed.inFeatures), a, lda, packed.panels, c, n, 0, bias,
                        Int32(range.lowerBound), Int32(range.upperBound))
                }
            }
        case let packed as PackedInt8Matrix: y = productInt8(x, rows: rows, packed)
        case let stored as StoredMatrix: y = productF32(x, rows: rows, stored.weight)
        default: preconditionFailure("\(weight.name) was prepared by another backend")
        }
        if let bias { addBias(&y, width: n, bias: bias) }
        return y
    }

    /// bf16 activations (rounded once per product) against packed panels, the panels split across the pool;
    /// `product(a, lda, c, panels)` multiplies one range of panels.
    private func productBF16(
        _ x: [Float], rows: Int, n: Int, k: Int, panels: Int,
        _ product: (UnsafePointer<UInt16>, Int, UnsafeMutablePointer<Float>, Range<Int>) -> Void
    ) -> [Float] {
        // Rows a multiple of 1 KiB apart would share the same few L1 sets in the micro-kernel (k = 4096 and 6144,
        // say); one extra cache line per row spreads them.
        let lda = (k + 1) / 2 * 2 + ((k + 1) / 2 * 2 % 512 == 0 ? 32 : 0)
        guard rows > 0 else { return [] }
        let a = UnsafeMutablePointer<UInt16>.allocate(capacity: rows * lda)
        defer { a.deallocate() }
        x.withUnsafeBufferPointer { input in
            let source = input.baseAddress!
            pool.run(rows, minimumChunk: max(1, Self.parallelElements / max(k, 1))) { range in
                ck_rows_to_bf16(source, k, Int32(k), a, lda, Int32(range.lowerBound), Int32(range.upperBound))
            }
        }
        return [Float](unsafeUninitializedCapacity: rows * n) { output, initialized in
            let c = output.baseAddress!
            pool.run(panels) { range in product(a, lda, c, range) }
            initialized = rows * n
        }
    }

    /// Activations quantised per row and group of 64 to int8 (once per product) against int8 panels.
    private func productInt8(_ x: [Float], rows: Int, _ w: PackedInt8Matrix) -> [Float] {
        let n = w.outFeatures, k = w.inFeatures
        let lda = (k + 3) / 4 * 4 + ((k + 3) / 4 * 4 % 1024 == 0 ? 64 : 0)  // see productBF16
        let groups = (k + Int(CK_INT8_GROUP) - 1) / Int(CK_INT8_GROUP)
        guard rows > 0 else { return [] }
        let a = UnsafeMutablePointer<UInt8>.allocate(capacity: rows * lda)
        let scales = UnsafeMutablePointer<Float>.allocate(capacity: rows * groups)
        defer {
            a.deallocate()
            scales.deallocate()
        }
        x.withUnsafeBufferPointer { input in
            let source = input.baseAddress!
            pool.run(rows, minimumChunk: max(1, Self.parallelElements / max(k, 1))) { range in
                ck_rows_to_q8(source, k, Int32(k), a, lda, scales, Int32(range.lowerBound), Int32(range.upperBound))
            }
        }
        return [Float](unsafeUninitializedCapacity: rows * n) { output, initialized in
            let c = output.baseAddress!
            pool.run(w.panelCount) { range in
                ck_gemm_int8(
                    Int32(rows), Int32(n), Int32(k), a, lda, scales, w.values, w.scales, w.sums, c, n, 0,
                    Int32(range.lowerBound), Int32(range.upperBound))
            }
            initialized = rows * n
        }
    }

    /// OpenBLAS SGEMM; non-f32 weights widened a block of rows at a time.
    private func productF32(_ x: [Float], rows: Int, _ weight: WeightTensor) -> [Float] {
        let n = weight.shape[0], k = weight.shape[1]
        var y = [Float](repeating: 0, count: rows * n)
        guard rows > 0 else { return y }
        x.withUnsafeBufferPointer { input in
            y.withUnsafeMutableBufferPointer { output in
                if let w = weight.f32Pointer {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k), 1, input.baseAddress,
                        Int32(k), w, Int32(k), 0, output.baseAddress, Int32(n))
                    return
                }
                if rows <= 8 {
                    // Decoding: each stored weight read once and widened in registers, outputs split on the pool.
                    let x = input.baseAddress!, y = output.baseAddress!, base = weight.base
                    let type = weight.dtype.kernelType
                    pool.run(n, minimumChunk: 16) { range in
                        ck_gemv_f32(
                            Int32(rows), Int32(k), x, base, type, y, Int32(n), Int32(range.lowerBound),
                            Int32(range.upperBound))
                    }
                    return
                }
                // Widened on every thread, a block of rows at a time: a bf16 7B model never needs an f32 copy.
                let blockRows = max(1, min(n, (8 << 20) / max(k, 1)))
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * k)
                defer { scratch.deallocate() }
                let type = weight.dtype.kernelType, base = weight.base
                for start in stride(from: 0, to: n, by: blockRows) {
                    let count = min(blockRows, n - start)
                    let offset = start * k
                    pool.run(count * k, minimumChunk: Self.parallelElements) { range in
                        ck_widen(
                            base + offset * weight.dtype.size, type, scratch, range.lowerBound, range.upperBound)
                    }
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(k), 1,
                        input.baseAddress, Int32(k), scratch, Int32(k), 0, output.baseAddress! + start, Int32(n))
                }
            }
        }
        return y
    }

    // MARK: Row kernels

    /// Runs `body` over row ranges, in parallel when the array is large.
    private func rows(_ count: Int, width: Int, _ body: (Range<Int>) -> Void) {
        pool.run(count, minimumChunk: max(1, Self.parallelElements / max(width, 1)), body)
    }

    public func layerNorm(_ x: [Float], width: Int, weight: [Float], bias: [Float], epsilon: Float) -> [Float] {
        let count = x.count / width
        return [Float](unsafeUninitializedCapacity: x.count) { output, initialized in
            x.withUnsafeBufferPointer { input in
                let source = input.baseAddress!, destination = output.baseAddress!
                rows(count, width: width) { range in
                    ck_layer_norm(
                        source, destination, Int32(width), weight, bias, epsilon, Int32(range.lowerBound),
                        Int32(range.upperBound))
                }
            }
            initialized = x.count
        }
    }

    public func rmsNorm(_ x: [Float], width: Int, weight: [Float], epsilon: Float) -> [Float] {
        let count = x.count / width
        return [Float](unsafeUninitializedCapacity: x.count) { output, initialized in
            x.withUnsafeBufferPointer { input in
                let source = input.baseAddress!, destination = output.baseAddress!
                rows(count, width: width) { range in
                    ck_rms_norm(
                        source, destination, Int32(width), weight, epsilon, Int32(range.lowerBound),
                        Int32(range.upperBound))
                }
            }
            initialized = x.count
        }
    }

    public func gelu(_ x: inout [Float]) {
        let exact = precision == .f32
        x.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            pool.run(buffer.count, minimumChunk: Self.parallelElements) { range in
                if exact {
                    ck_gelu_exact(base, range.lowerBound, range.upperBound)
                } else {
                    ck_gelu(base, range.lowerBound, range.upperBound)
                }
            }
        }
    }

    public func siluMultiply(_ gate: inout [Float], _ up: [Float]) {
        precondition(gate.count == up.count, "siluMultiply: \(gate.count) gates, \(up.count) values")
        elementwise(&gate, up, ck_silu_mul)
    }

    public func add(_ x: inout [Float], _ y: [Float]) {
        precondition(x.count == y.count, "add: \(x.count) and \(y.count) elements")
        elementwise(&x, y, ck_add)
    }

    /// `kernel(x, y, begin, end)` over the elements of two arrays of one size, in parallel when they are large.
    private func elementwise(
        _ x: inout [Float], _ y: [Float],
        _ kernel: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Int) -> Void
    ) {
        x.withUnsafeMutableBufferPointer { buffer in
            y.withUnsafeBufferPointer { other in
                let base = buffer.baseAddress!, source = other.baseAddress!
                pool.run(buffer.count, minimumChunk: Self.parallelElements) { range in
                    kernel(base, source, range.lowerBound, range.upperBound)
                }
            }
        }
    }

    public func addBias(_ x: inout [Float], width: Int, bias: [Float]) {
        precondition(bias.count == width, "addBias: \(bias.count) values for width \(width)")
        let count = x.count / width
        x.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            rows(count, width: width) { range in
                ck_add_bias(base, Int32(width), bias, Int32(range.lowerBound), Int32(range.upperBound))
            }
        }
    }

    public func rotary(_ x: inout [Float], heads: Int, headSize: Int, positions: [Int], inverseFrequencies: [Float]) {
        precondition(headSize / 2 <= 512 && inverseFrequencies.count == headSize / 2, "rotary: head size \(headSize)")
        precondition(
            x.count >= positions.count * heads * headSize, "rotary: \(x.count) values for \(positions.count) rows")
        let positions32 = positions.map { Int32(truncatingIfNeeded: $0) }
        x.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            rows(positions.count, width: heads * headSize) { range in
                ck_rotary(
                    base, Int32(heads), Int32(headSize), positions32, inverseFrequencies, Int32(range.lowerBound),
                    Int32(range.upperBound))
            }
        }
    }
}

extension Optional where Wrapped == [Float] {
    /// `body` with the array's elements, or with nil.
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let values): values.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}
