// SHA-256 (FIPS 180-4), for naming image contents (`tasks.image_sha256`) and checkpoints' weights, through CDigest
// (the x86 SHA extensions where present).

import CDigest

/// SHA-256 digests of byte buffers, whole or streamed.
public enum SHA256 {
    /// The digest of `bytes` as 64 lower-case hex digits.
    public static func hex(of bytes: some Collection<UInt8>) -> String {
        hex(digest(of: bytes))
    }

    /// The 32-byte digest of `bytes`.
    public static func digest(of bytes: some Collection<UInt8>) -> [UInt8] {
        var hasher = Hasher()
        if bytes.withContiguousStorageIfAvailable({ hasher.update($0) }) == nil { hasher.update(Array(bytes)) }
        return hasher.finish()
    }

    /// Lower-case hex of a digest.
    public static func hex(_ digest: [UInt8]) -> String {
        digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Whether the processor's SHA instructions do the work.
    public static var isAccelerated: Bool { cd_sha256_accelerated() != 0 }

    /// A digest fed in pieces.
    public struct Hasher {
        private var context = cd_sha256()

        public init() {
            cd_sha256_init(&context)
        }

        public mutating func update(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let base = bytes.baseAddress else { return }
            cd_sha256_update(&context, base, bytes.count)
        }

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress else { return }
            cd_sha256_update(&context, base, bytes.count)
        }

        public mutating func update(_ bytes: [UInt8]) {
            bytes.withUnsafeBufferPointer { update($0) }
        }

        /// The 32-byte digest; the hasher is spent.
        public mutating func finish() -> [UInt8] {
            var digest = [UInt8](repeating: 0, count: 32)
            digest.withUnsafeMutableBufferPointer { cd_sha256_final(&context, $0.baseAddress!) }
            return digest
        }
    }
}
