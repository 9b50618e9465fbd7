// The CUDA implementation of the compute seam: weights resident on the GPU (bf16 or f32), products through cuBLAS
// (tensor cores for bf16, f32 accumulation), row kernels and attention compiled by NVRTC. Buffers stay on the GPU
// from the first layer to the last; only `buffer(_:)` and `values(_:)` cross to and from the host.

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

    public var arithmetic: String {
        "cuda \(precision.rawValue) \(device) \(context.kernelImage.architecture)"
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

    // MARK: Buffers

    /// Scratch slots for small per-call inputs (positions, copy runs, padding flags).
    enum Slot: Int {
        case positions, runs, flags, converted
    }

    /// Runs `body` on the GPU; a failure there (a lost device, memory exhausted) ends the process with the reason,
    /// because the seam's callers cannot go on without the result.
    func onDevice<T>(_ operation: String, _ body: () throws -> T) -> T {
        do {
            return try context.exclusive(body)
        } catch {
            fatalError("CUDA backend, \(operation) on \(device): \(error)")
        }
    }

    /// A new device buffer of `count` elements (contents undefined).
    func empty(_ count: Int, _ type: KVElementType = .f32) throws -> ComputeBuffer {
        ComputeBuffer(device: try context.memory(count * type.size), count: count, type)
    }

    /// `x`'s device address, copying a host buffer over first.
    func address(_ x: inout ComputeBuffer) throws -> UInt64 {
        if x.device == nil { x = try upload(x) }
        return x.device!.address
    }

    func upload(_ x: ComputeBuffer) throws -> ComputeBuffer {
        if x.device != nil { return x }
        var out = try empty(x.count, x.elementType)
        let destination = out.device!.address
        switch x.elementType {
        case .f32: try x.floats.withUnsafeBytes { try context.upload($0.baseAddress!, bytes: x.bytes, to: destination) }
        case .bf16:
            try x.halves.withUnsafeBytes { try context.upload($0.baseAddress!, bytes: x.bytes, to: destination) }
        }
        out.floats = []
        return out
    }

    /// `x` ready to be written in place: its own device memory.
    func writable(_ x: inout ComputeBuffer) throws -> UInt64 {
        if x.device == nil {
            x = try upload(x)
        } else if !x.uniqueDevice() {
            let copy = try empty(x.count, x.elementType)
            try context.copy(from: x.device!.address, to: copy.device!.address, bytes: x.bytes)
            x = copy
        }
        return x.device!.address
    }

    /// Small host values in scratch slot `slot`.
    func small<T>(_ values: [T], slot: Slot) throws -> UInt64 {
        let bytes = values.count * MemoryLayout<T>.stride
        let pointer = try context.scratch(slot.rawValue, bytes: bytes)
        try values.withUnsafeBytes { try context.uploadQueued($0.baseAddress!, bytes: bytes, to: pointer) }
        return pointer
    }

    public func buffer(_ values: [Float]) -> ComputeBuffer {
        onDevice("upload") { try upload(ComputeBuffer(values)) }
    }

    public func zeros(_ count: Int, _ type: KVElementType) -> ComputeBuffer {
        onDevice("zeros") {
            let out = try empty(count, type)
            try context.zero(out.device!.address, bytes: out.bytes)
            return out
        }
    }

    public func uninitialized(_ count: Int, _ type: KVElementType) -> ComputeBuffer {
        onDevice("allocating") { try empty(count, type) }
    }

    public func values(_ x: ComputeBuffer) -> [Float] {
        guard let memory = x.device else {
            return x.elementType == .f32 ? x.floats : x.halves.map { Float(bitPattern: UInt32($0) << 16) }
        }
        return onDevice("download") {
            var source = memory.address
            var widened: ComputeBuffer?
            if x.elementType == .bf16 {
                widened = try empty(x.count)
                source = widened!.device!.address
                try context.launch(
                    "to_f32", grid: CUDAContext.grid(elements: x.count),
                    [.pointer(memory.address), .pointer(source), .int64(Int64(x.count))])
            }
            return try [Float](unsafeUninitializedCapacity: x.count) { buffer, initialized in
                try context.download(source, bytes: x.count * 4, into: buffer.baseAddress!)
                initialized = x.count
            }
        }
    }

    // MARK: Products

    public func linear(_ x: ComputeBuffer, rows: Int, weight: any PreparedMatrix, bias: ComputeBuffer?)
        -> ComputeBuffer
    {
        guard let matrix = weight as? CUDAMatrix else {
            preconditionFailure("\(weight.name) was prepared by another backend")
        }
        precondition(matrix.pointer != 0, "\(weight.name) is not on the GPU: \(matrix.failure ?? "")")
        precondition(x.elementType == .f32 && x.count == rows * matrix.inFeatures, "\(weight.name): input shape")
        let n = matrix.outFeatures, k = matrix.inFeatures
        return onDevice("linear \(weight.name) [\(rows) x \(k)]") {
            var x = x, bias = bias
            let out = try empty(rows * n)
            guard rows > 0 else { return out }
            var a = try address(&x)
            if matrix.type == Int32(CCUDA_BF16) {
                a = try context.scratch(Slot.converted.rawValue, bytes: rows * k * 2)
                try context.launch(
                    "to_bf16", grid: CUDAContext.grid(elements: rows * k),
                    [.pointer(x.device!.address), .pointer(a), .int64(Int64(rows * k))])
            }
            try context.gemm(type: matrix.type, m: rows, n: n, k: k, a: a, b: matrix.pointer, c: out.device!.address)
            if bias != nil {
                let b = try address(&bias!)
                try context.launch(
                    "add_bias", grid: CUDAContext.grid(elements: rows * n),
                    [.pointer(out.device!.address), .pointer(b), .int64(Int64(rows)), .int32(Int32(n))])
            }
            return out
        }
    }

    // MARK: Row kernels

    public func layerNorm(_ x: ComputeBuffer, width: Int, weight: ComputeBuffer, bias: ComputeBuffer, epsilon: Float)
        -> ComputeBuffer
    {
        onDevice("layerNorm") {
            var (x, weight, bias) = (x, weight, bias)
            let out = try empty(x.count)
            let rows = x.count / width
            guard rows > 0 else { return out }
            try context.launch(
                "layer_norm", grid: (rows, 1, 1),
                [
                    .pointer(try address(&x)), .pointer(out.device!.address), .pointer(try address(&weight)),
                    .pointer(try address(&bias)), .int32(Int32(width)), .float(epsilon),
                ])
            return out
        }
    }

    public func rmsNorm(_ x: ComputeBuffer, width: Int, weight: ComputeBuffer, epsilon: Float) -> ComputeBuffer {
        onDevice("rmsNorm") {
            var (x, weight) = (x, weight)
            let out = try empty(x.count)
            let rows = x.count / width
            guard rows > 0 else { return out }
            try context.launch(
                "rms_norm", grid: (rows, 1, 1),
                [
                    .pointer(try address(&x)), .pointer(out.device!.address), .pointer(try address(&weight)),
                    .int32(Int32(width)), .float(epsilon),
                ])
            return out
        }
    }

    /// `kernel(x, n)` or `kernel(x, y, n)` in place on `x`.
    private func elementwise(_ kernel: String, _ x: inout ComputeBuffer, _ y: ComputeBuffer? = nil) {
        guard x.count > 0 else { return }
        onDevice(kernel) {
            var arguments: [KernelArgument] = [.pointer(try writable(&x))]
            if var y { arguments.append(.pointer(try address(&y))) }
            arguments.append(.int64(Int64(x.count)))
            try context.launch(kernel, grid: CUDAContext.grid(elements: x.count), arguments)
        }
    }

    public func gelu(_ x: inout ComputeBuffer) { elementwise("gelu", &x) }

    public func siluMultiply(_ gate: inout ComputeBuffer, _ up: ComputeBuffer) {
        precondition(gate.count == up.count, "siluMultiply: \(gate.count) gates, \(up.count) values")
        elementwise("silu_mul", &gate, up)
    }

    public func add(_ x: inout ComputeBuffer, _ y: ComputeBuffer) {
        precondition(x.count == y.count, "add: \(x.count) and \(y.count) elements")
        elementwise("add", &x, y)
    }

    public func addBias(_ x: inout ComputeBuffer, width: Int, bias: ComputeBuffer) {
        precondition(bias.count == width, "addBias: \(bias.count) values for width \(width)")
        guard x.count > 0 else { return }
        onDevice("addBias") {
            var bias = bias
            try context.launch(
                "add_bias", grid: CUDAContext.grid(elements: x.count),
                [
                    .pointer(try writable(&x)), .pointer(try address(&bias)), .int64(Int64(x.count / width)),
                    .int32(Int32(width)),
                ])
        }
    }

    public func rotary(
        _ x: inout ComputeBuffer, heads: Int, headSize: Int, positions: [Int], inverseFrequencies: ComputeBuffer
    ) {
        precondition(inverseFrequencies.count == headSize / 2, "rotary: head size \(headSize)")
        guard !positions.isEmpty else { return }
        onDevice("rotary") {
            var frequencies = inverseFrequencies
            let p = try small(positions.map { Int32(truncatingIfNeeded: $0) }, slot: .positions)
            try context.launch(
                "rotary", grid: (positions.count, 1, 1),
                [
                    .pointer(try writable(&x)), .pointer(p), .pointer(try address(&frequencies)),
                    .int32(Int32(heads)), .int32(Int32(headSize)),
                ])
        }
    }

    // MARK: Moving rows

    public func patchRows(_ images: [[Float]], size: Int, patch: Int) -> ComputeBuffer {
        onDevice("patchRows") {
            let pixels = 3 * size * size, grid = size / patch
            let staged = try empty(images.count * pixels)
            for (index, image) in images.enumerated() {
                precondition(image.count == pixels, "patchRows: an image of \(image.count) values, not \(pixels)")
                try image.withUnsafeBytes {
                    try context.upload(
                        $0.baseAddress!, bytes: pixels * 4, to: staged.device!.address + UInt64(index * pixels * 4))
                }
            }
            let out = try empty(images.count * grid * grid * 3 * patch * patch)
            guard out.count > 0 else { return out }
            try context.launch(
                "patch_rows", grid: CUDAContext.grid(elements: out.count),
                [
                    .pointer(staged.device!.address), .pointer(out.device!.address), .int64(Int64(images.count)),
                    .int32(Int32(size)), .int32(Int32(patch)),
                ])
            return out
        }
    }

    public func gatherRows(_ x: ComputeBuffer, width: Int, rows: [Int]) -> ComputeBuffer {
        precondition(
            rows.allSatisfy { $0 >= 0 && ($0 + 1) * width <= x.count },
            "gatherRows: a row outside \(x.count / max(width, 1))")
        var out = onDevice("gatherRows") { try empty(rows.count * width) }
        copy(x, into: &out, runs: rows.enumerated().map { (from: $1 * width, to: $0 * width) }, length: width)
        return out
    }

    public func averagePool(_ x: ComputeBuffer, images: Int, grid: Int, pool: Int, width: Int) -> ComputeBuffer {
        onDevice("averagePool") {
            var x = x
            let out = try empty(images * pool * pool * width)
            guard images > 0 else { return out }
            try context.launch(
                "average_pool", grid: (images * pool * pool, 1, 1),
                [
                    .pointer(try address(&x)), .pointer(out.device!.address), .int32(Int32(grid)),
                    .int32(Int32(pool)), .int32(Int32(width)),
                ])
            return out
        }
    }

    public func copy(
        _ source: ComputeBuffer, into destination: inout ComputeBuffer, runs: [(from: Int, to: Int)], length: Int
    ) {
        ComputeBuffer.checkCopy(from: source, into: destination, runs: runs, length: length)
        guard !runs.isEmpty, length > 0 else { return }
        onDevice("copy") {
            var source = source
            let from = try address(&source), to = try writable(&destination)
            let kernel =
                switch (source.elementType, destination.elementType) {
                case (.f32, .f32): "copy_runs_f32"
                case (.f32, .bf16): "copy_runs_f32_bf16"
                default: "copy_runs_u16"
                }
            // Launched in groups of at most 65,535 runs (the grid's y limit).
            for start in stride(from: 0, to: runs.count, by: 65535) {
                let group = runs[start..<min(start + 65535, runs.count)]
                let table = try small(group.flatMap { [Int64($0.from), Int64($0.to)] }, slot: .runs)
                try context.launch(
                    kernel, grid: (min((length + 255) / 256, 4096), group.count, 1),
                    [.pointer(from), .pointer(to), .pointer(table), .int64(Int64(length))])
            }
        }
    }
}
