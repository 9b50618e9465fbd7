// The CUDA implementation of the compute seam: weights resident on the GPU (bf16 or f32), products through cuBLAS
// (tensor cores for bf16, f32 accumulation), row kernels and attention compiled by NVRTC. Activations cross the seam
// as host arrays, so every call copies its inputs to the GPU and its result back.

import CCUDA
import Compute
import Foundation
import Tensors

/// Computes on an NVIDIA GPU, loaded at run time: a machine without CUDA builds and runs everything else.
public struct CUDABackend: ComputeBackend {
    public let precision: ComputePrecision
    let context: CUDAContext
    private let failures = LoadFailures()

    public var device: CUDADevice { context.device }
    public var kvElementType: KVElementType { precision == .f32 ? .f32 : .bf16 }

    public var summary: String {
        let image = context.kernelImage
        return "cuda \(precision.rawValue), \(device), cuBLAS products, NVRTC kernels (\(image.architecture)"
            + (image.cached ? ", cached)" : ")")
    }

    /// Opens GPU `ordinal` and loads the kernels (compiled on first use, then from `cacheDirectory`).
    ///
    /// Throws when there is no driver, no such GPU, no NVRTC or cuBLAS, or for `int8`, which the CPU backend alone
    /// implements.
    public init(
        precision: ComputePrecision, ordinal: Int = 0, cacheDirectory: URL? = KernelCompiler.defaultCacheDirectory()
    )
        throws
    {
        guard precision != .int8 else {
            throw CUDAError("--dtype int8 runs on the CPU only; use bf16 (the fast mode) or f32 on cuda")
        }
        let devices = try CUDADevice.all()
        guard devices.indices.contains(ordinal) else {
            throw CUDAError(
                "no GPU \(ordinal): this machine has \(devices.count) (\(devices.map(\.name).joined(separator: ", ")))")
        }
        self.precision = precision
        context = try CUDAContext(device: devices[ordinal], cacheDirectory: cacheDirectory)
    }

    /// Free and total GPU memory now.
    public func memoryInfo() throws -> (free: Int, total: Int) {
        try context.exclusive { try context.memoryInfo() }
    }

    /// Throws the first weight that could not be placed on the GPU (out of memory, say), naming it.
    public func checkLoaded() throws {
        if let failure = failures.first { throw CUDAError("loading the weights onto \(device): \(failure)") }
    }

    public func prepare(_ weight: WeightTensor) -> any PreparedMatrix {
        precondition(weight.shape.count == 2, "\(weight.name): a matrix is 2-D, not \(weight.shape)")
        let matrix = CUDAMatrix(weight, bf16: precision != .f32, context: context)
        if let failure = matrix.failure { failures.record(failure) }
        return matrix
    }

    // MARK: Calls

    /// Scratch slots: each call's buffers, reused across calls.
    enum Slot: Int {
        case input, converted, output, second, third, fourth, fifth
    }

    /// Runs `body` on the GPU; a failure there (a lost device, an out-of-memory scratch buffer) ends the process with
    /// the reason, because the seam's callers cannot go on without the result.
    func onDevice<T>(_ operation: String, _ body: () throws -> T) -> T {
        do {
            return try context.exclusive(body)
        } catch {
            fatalError("CUDA backend, \(operation) on \(device): \(error)")
        }
    }

    func upload(_ values: [Float], slot: Slot) throws -> UInt64 {
        let pointer = try context.scratch(slot.rawValue, bytes: values.count * 4)
        try values.withUnsafeBytes { try context.upload($0.baseAddress!, bytes: $0.count, to: pointer) }
        return pointer
    }

    func download(_ pointer: UInt64, count: Int) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try context.download(pointer, bytes: count * 4, into: buffer.baseAddress!)
            initialized = count
        }
    }

    public func linear(_ x: [Float], rows: Int, weight: any PreparedMatrix, bias: [Float]?) -> [Float] {
        guard let matrix = weight as? CUDAMatrix else {
            preconditionFailure("\(weight.name) was prepared by another backend")
        }
        precondition(matrix.pointer != 0, "\(weight.name) is not on the GPU: \(matrix.failure ?? "")")
        let n = matrix.outFeatures, k = matrix.inFeatures
        guard rows > 0 else { return [] }
        return onDevice("linear \(weight.name) [\(rows) x \(k)]") {
            let input = try upload(x, slot: .input)
            let output = try context.scratch(Slot.output.rawValue, bytes: rows * n * 4)
            var a = input
            if matrix.type == Int32(CCUDA_BF16) {
                a = try context.scratch(Slot.converted.rawValue, bytes: rows * k * 2)
                try context.launch(
                    "to_bf16", grid: CUDAContext.grid(elements: rows * k),
                    [.pointer(input), .pointer(a), .int64(Int64(rows * k))])
            }
            try context.gemm(type: matrix.type, m: rows, n: n, k: k, a: a, b: matrix.pointer, c: output)
            if let bias {
                let b = try upload(bias, slot: .second)
                try context.launch(
                    "add_bias", grid: CUDAContext.grid(elements: rows * n),
                    [.pointer(output), .pointer(b), .int64(Int64(rows)), .int32(Int32(n))])
            }
            return try download(output, count: rows * n)
        }
    }

    // MARK: Row kernels

    public func layerNorm(_ x: [Float], width: Int, weight: [Float], bias: [Float], epsilon: Float) -> [Float] {
        let rows = x.count / width
        guard rows > 0 else { return [] }
        return onDevice("layerNorm") {
            let input = try upload(x, slot: .input), w = try upload(weight, slot: .second)
            let b = try upload(bias, slot: .third),
                output = try context.scratch(Slot.output.rawValue, bytes: x.count * 4)
            try context.launch(
                "layer_norm", grid: (rows, 1, 1),
                [.pointer(input), .pointer(output), .pointer(w), .pointer(b), .int32(Int32(width)), .float(epsilon)])
            return try download(output, count: x.count)
        }
    }

    public func rmsNorm(_ x: [Float], width: Int, weight: [Float], epsilon: Float) -> [Float] {
        let rows = x.count / width
        guard rows > 0 else { return [] }
        return onDevice("rmsNorm") {
            let input = try upload(x, slot: .input), w = try upload(weight, slot: .second)
            let output = try context.scratch(Slot.output.rawValue, bytes: x.count * 4)
            try context.launch(
                "rms_norm", grid: (rows, 1, 1),
                [.pointer(input), .pointer(output), .pointer(w), .int32(Int32(width)), .float(epsilon)])
            return try download(output, count: x.count)
        }
    }

    /// `kernel(x, n)` or `kernel(x, y, n)` in place on `x`.
    private func elementwise(_ kernel: String, _ x: inout [Float], _ y: [Float]? = nil) {
        guard !x.isEmpty else { return }
        x = onDevice(kernel) {
            let input = try upload(x, slot: .input)
            var arguments: [KernelArgument] = [.pointer(input)]
            if let y { arguments.append(.pointer(try upload(y, slot: .second))) }
            arguments.append(.int64(Int64(x.count)))
            try context.launch(kernel, grid: CUDAContext.grid(elements: x.count), arguments)
            return try download(input, count: x.count)
        }
    }

    public func gelu(_ x: inout [Float]) { elementwise("gelu", &x) }

    public func siluMultiply(_ gate: inout [Float], _ up: [Float]) {
        precondition(gate.count == up.count, "siluMultiply: \(gate.count) gates, \(up.count) values")
        elementwise("silu_mul", &gate, up)
    }

    public func add(_ x: inout [Float], _ y: [Float]) {
        precondition(x.count == y.count, "add: \(x.count) and \(y.count) elements")
        elementwise("add", &x, y)
    }

    public func addBias(_ x: inout [Float], width: Int, bias: [Float]) {
        precondition(bias.count == width, "addBias: \(bias.count) values for width \(width)")
        guard !x.isEmpty else { return }
        let rows = x.count / width
        x = onDevice("addBias") {
            let input = try upload(x, slot: .input), b = try upload(bias, slot: .second)
            try context.launch(
                "add_bias", grid: CUDAContext.grid(elements: x.count),
                [.pointer(input), .pointer(b), .int64(Int64(rows)), .int32(Int32(width))])
            return try download(input, count: x.count)
        }
    }

    public func rotary(_ x: inout [Float], heads: Int, headSize: Int, positions: [Int], inverseFrequencies: [Float]) {
        precondition(inverseFrequencies.count == headSize / 2, "rotary: head size \(headSize)")
        guard !positions.isEmpty else { return }
        let positions32 = positions.map { Int32(truncatingIfNeeded: $0) }
        x = onDevice("rotary") {
            let input = try upload(x, slot: .input)
            let p = try context.scratch(Slot.second.rawValue, bytes: positions32.count * 4)
            try positions32.withUnsafeBytes { try context.upload($0.baseAddress!, bytes: $0.count, to: p) }
            let f = try upload(inverseFrequencies, slot: .third)
            try context.launch(
                "rotary", grid: (positions.count, 1, 1),
                [.pointer(input), .pointer(p), .pointer(f), .int32(Int32(heads)), .int32(Int32(headSize))])
            return try download(input, count: x.count)
        }
    }
}

/// The first weights that failed to reach the GPU, shared by the copies of one backend.
final class LoadFailures: @unchecked Sendable {
    // Invariant: `failures` is touched only under `lock`.
    private var failures: [String] = []
    private let lock = NSLock()

    func record(_ failure: String) {
        lock.lock()
        defer { lock.unlock() }
        failures.append(failure)
    }

    var first: String? {
        lock.lock()
        defer { lock.unlock() }
        return failures.first
    }
}
