// The GPUs of this machine, as the CUDA driver reports them.

import CCUDA

/// An NVIDIA GPU as the driver reports it.
public struct CUDADevice: Sendable, CustomStringConvertible {
    public let ordinal: Int
    public let name: String
    public let major: Int, minor: Int
    public let memory: Int
    public let multiprocessors: Int
    /// Shared memory one block may opt in to, in bytes.
    public let sharedMemoryOptIn: Int

    public var description: String {
        "\(name) (sm_\(major)\(minor), \(multiprocessors) SMs, \(memory >> 30) GiB)"
    }

    /// The GPUs of this machine; throws, with the reason, when the driver, a GPU or cuBLAS is missing.
    public static func all() throws -> [CUDADevice] {
        var count: Int32 = 0
        try CUDAError.check { ccuda_device_count(&count, $0, $1) }
        guard count > 0 else { throw CUDAError("the NVIDIA driver is installed but reports no GPU") }
        return try (0..<Int(count)).map { ordinal in
            var name = [CChar](repeating: 0, count: 256)
            var major: Int32 = 0, minor: Int32 = 0, processors: Int32 = 0, shared: Int32 = 0
            var memory = 0
            try CUDAError.check { error, size in
                ccuda_device_info(
                    Int32(ordinal), &name, name.count, &major, &minor, &memory, &processors, &shared, error, size)
            }
            return CUDADevice(
                ordinal: ordinal,
                name: String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                major: Int(major), minor: Int(minor), memory: memory, multiprocessors: Int(processors),
                sharedMemoryOptIn: Int(shared))
        }
    }
}
