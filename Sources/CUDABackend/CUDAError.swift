// Failures of the CUDA backend, each with the operation and the driver's, NVRTC's or cuBLAS's words.

/// Why the CUDA backend could not start or an operation on the GPU failed.
public struct CUDAError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    /// Runs a CCUDA call that fills an error buffer, throwing its message on a nonzero status.
    static func check(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var buffer = [CChar](repeating: 0, count: 512)
        let status = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        if status != 0 {
            throw CUDAError(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }
}
