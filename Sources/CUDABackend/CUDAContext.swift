// One GPU as the CUDA backend uses it: its primary context and cuBLAS handle, the compiled kernels, and device
// buffers reused from call to call. Every use runs under one lock, in order, on CUDA's default stream.

import CCUDA
import Compute
import Foundation

/// A kernel argument, passed by value.
enum KernelArgument {
    case pointer(UInt64)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
}

/// The GPU in use: context, kernels and scratch buffers.
final class CUDAContext: @unchecked Sendable {
    // Invariant: `handle` and `scratch` are used only while `lock` is held (the pool has `poolLock`).
    let device: CUDADevice
    let kernelImage: KernelCompiler.Image
    private let handle: OpaquePointer
    private let functions: [String: UnsafeMutableRawPointer]
    private var scratch: [Int: (pointer: UInt64, bytes: Int)] = [:]
    private let lock = NSLock()
    /// Freed device memory by size, for the next buffer of that size (decoding allocates the same sizes each step).
    /// Its own lock: a buffer may be freed while `lock` is held.
    private var pool: [Int: [UInt64]] = [:]
    private let poolLock = NSLock()
    /// Dynamic shared memory the attention kernels may use.
    let attentionSharedLimit: Int

    init(device: CUDADevice, cacheDirectory: URL?) throws {
        var opened: OpaquePointer?
        try CUDAError.check { ccuda_context_open(Int32(device.ordinal), &opened, $0, $1) }
        let handle = opened!
        do {
            var image = try KernelCompiler.image(
                major: device.major, minor: device.minor, cacheDirectory: cacheDirectory)
            let names = CUDAKernelSource.names
            var loaded = [UnsafeMutableRawPointer?](repeating: nil, count: names.count)
            let cNames = names.map { UnsafePointer(strdup($0)) }
            defer { cNames.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
            func load(_ image: KernelCompiler.Image) throws {
                try image.bytes.withUnsafeBytes { bytes in
                    try cNames.withUnsafeBufferPointer { namePointers in
                        try CUDAError.check { error, size in
                            ccuda_load_module(
                                handle, bytes.baseAddress, namePointers.baseAddress, Int32(names.count), &loaded,
                                error, size)
                        }
                    }
                }
            }
            do {
                try load(image)
            } catch  where image.cached {
                // A cached image the driver refuses (damaged, or from another setup) is compiled again and replaced.
                image = try KernelCompiler.image(
                    major: device.major, minor: device.minor, cacheDirectory: cacheDirectory, refresh: true)
                try load(image)
            }
            // Scores of up to `keys` floats sit in shared memory beside 2.2 KB of the kernel's own.
            let sharedLimit = max(48 * 1024, device.sharedMemoryOptIn) - 4096
            for (name, function) in zip(names, loaded) where name.hasPrefix("attention") {
                try CUDAError.check { ccuda_set_shared_limit(handle, function, Int32(sharedLimit), $0, $1) }
            }
            self.device = device
            self.handle = handle
            kernelImage = image
            attentionSharedLimit = sharedLimit
            functions = Dictionary(uniqueKeysWithValues: zip(names, loaded.map { $0! }))
        } catch {
            ccuda_context_close(handle)
            throw error
        }
    }

    deinit {
        for buffer in scratch.values { ccuda_free(handle, buffer.pointer) }
        for addresses in pool.values { addresses.forEach { ccuda_free(handle, $0) } }
        ccuda_context_close(handle)
    }

    /// Runs `body` with the GPU to itself.
    func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: Memory (the caller holds the lock, through `exclusive`)

    func allocate(_ bytes: Int) throws -> UInt64 {
        var pointer: UInt64 = 0
        try CUDAError.check { ccuda_alloc(handle, bytes, &pointer, $0, $1) }
        return pointer
    }

    /// `allocate`, and when the GPU is full, once more after the pool's memory (held for other sizes) goes back to
    /// the driver.
    func allocateOrTrim(_ bytes: Int) throws -> UInt64 {
        do {
            return try allocate(bytes)
        } catch {
            poolLock.lock()
            let held = pool.values.flatMap { $0 }
            pool.removeAll()
            poolLock.unlock()
            if held.isEmpty { throw error }
            try synchronize()  // queued work may still read pooled memory
            held.forEach { ccuda_free(handle, $0) }
            return try allocate(bytes)
        }
    }

    func deallocate(_ pointer: UInt64) {
        ccuda_free(handle, pointer)
    }

    /// Device memory for a buffer of at least `bytes`, from the pool when a freed one fits.
    func memory(_ bytes: Int) throws -> DeviceMemory {
        let size =
            bytes <= 1 << 20
            ? max(256, 1 << (Int.bitWidth - max(bytes - 1, 1).leadingZeroBitCount))
            : (bytes + (1 << 21) - 1) / (1 << 21) * (1 << 21)
        poolLock.lock()
        let reused = pool[size]?.popLast()
        poolLock.unlock()
        let address = try reused ?? allocateOrTrim(size)
        return DeviceMemory(address: address, bytes: size) { [self] address, bytes in
            poolLock.lock()
            pool[bytes, default: []].append(address)
            poolLock.unlock()
        }
    }

    func zero(_ address: UInt64, bytes: Int) throws {
        try CUDAError.check { ccuda_zero(handle, address, bytes, $0, $1) }
    }

    func copy(from source: UInt64, to destination: UInt64, bytes: Int) throws {
        try CUDAError.check { ccuda_copy(handle, destination, source, bytes, $0, $1) }
    }

    /// Scratch buffer `slot`, at least `bytes` long, kept for later calls.
    func scratch(_ slot: Int, bytes: Int) throws -> UInt64 {
        if let buffer = scratch[slot], buffer.bytes >= bytes { return buffer.pointer }
        if let buffer = scratch.removeValue(forKey: slot) {
            try synchronize()  // queued work may still read the old buffer
            ccuda_free(handle, buffer.pointer)
        }
        // Grown by half again, so that slowly growing calls (decode steps) do not reallocate each time.
        let size = max(bytes + bytes / 2, 1 << 16)
        let pointer = try allocateOrTrim(size)
        scratch[slot] = (pointer, size)
        return pointer
    }

    func upload(_ source: UnsafeRawPointer, bytes: Int, to destination: UInt64) throws {
        try CUDAError.check { ccuda_upload(handle, destination, source, bytes, $0, $1) }
    }

    /// A small upload queued behind the work already submitted (see `ccuda_upload_queued`).
    func uploadQueued(_ source: UnsafeRawPointer, bytes: Int, to destination: UInt64) throws {
        try CUDAError.check { ccuda_upload_queued(handle, destination, source, bytes, $0, $1) }
    }

    func download(_ source: UInt64, bytes: Int, into destination: UnsafeMutableRawPointer) throws {
        try CUDAError.check { ccuda_download(handle, destination, source, bytes, $0, $1) }
    }

    func memoryInfo() throws -> (free: Int, total: Int) {
        var free = 0, total = 0
        try CUDAError.check { ccuda_memory_info(handle, &free, &total, $0, $1) }
        return (free, total)
    }

    // MARK: Work

    func launch(
        _ name: String, grid: (Int, Int, Int), block: Int = CUDAKernelSource.blockThreads, sharedBytes: Int = 0,
        _ arguments: [KernelArgument]
    ) throws {
        guard let function = functions[name] else { throw CUDAError("no kernel named \(name)") }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(arguments.count, 1) * 8, alignment: 8)
        defer { storage.deallocate() }
        var pointers = [UnsafeMutableRawPointer?]()
        for (index, argument) in arguments.enumerated() {
            let slot = storage + index * 8
            switch argument {
            case .pointer(let value): slot.storeBytes(of: value, as: UInt64.self)
            case .int32(let value): slot.storeBytes(of: value, as: Int32.self)
            case .int64(let value): slot.storeBytes(of: value, as: Int64.self)
            case .float(let value): slot.storeBytes(of: value, as: Float.self)
            }
            pointers.append(slot)
        }
        try pointers.withUnsafeMutableBufferPointer { arguments in
            try CUDAError.check { error, size in
                ccuda_launch(
                    handle, function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block),
                    UInt32(sharedBytes), arguments.baseAddress, error, size)
            }
        }
    }

    /// Blocks for an elementwise kernel over `count` elements (grid-stride loops cover the rest).
    static func grid(elements count: Int) -> (Int, Int, Int) {
        (max(1, min((count + CUDAKernelSource.blockThreads - 1) / CUDAKernelSource.blockThreads, 1 << 20)), 1, 1)
    }

    /// Row-major `c[m, n] = a[m, k] · b[n, k]ᵀ` in f32 or bf16 (`type`: CCUDA_F32 or CCUDA_BF16).
    func gemm(type: Int32, m: Int, n: Int, k: Int, a: UInt64, b: UInt64, c: UInt64) throws {
        try CUDAError.check { ccuda_gemm(handle, type, Int32(m), Int32(n), Int32(k), a, b, c, $0, $1) }
    }

    /// cuBLAS's column-major strided batched product with f32 output (see `ccuda_gemm_batched`).
    func gemmBatched(
        type: Int32, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UInt64, lda: Int, strideA: Int,
        b: UInt64, ldb: Int, strideB: Int, c: UInt64, ldc: Int, strideC: Int, batch: Int
    ) throws {
        try CUDAError.check { error, size in
            ccuda_gemm_batched(
                handle, type, transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), a, Int64(lda),
                Int64(strideA), b, Int64(ldb), Int64(strideB), c, Int64(ldc), Int64(strideC), Int32(batch), error,
                size)
        }
    }

    func synchronize() throws {
        try CUDAError.check { ccuda_synchronize(handle, $0, $1) }
    }
}
