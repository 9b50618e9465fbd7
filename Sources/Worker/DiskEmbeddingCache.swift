// Visual tokens on disk, shared by the workers of a host (`worker --embedding-cache DIR`): one file per image and
// model fingerprint, written to a temporary name and renamed into place (so a reader sees a whole entry or none),
// checked on every read (a damaged or truncated entry is removed and computed again), and evicted least recently
// used first to stay within a size.

import Foundation
import Generation
import Imaging

#if canImport(Glibc)
    import Glibc
#endif

/// A `VisualEmbeddingCache` in a directory. Thread-safe, and safe for several processes on one directory.
///
/// An entry is `<key>.vt`: the magic `INFMVT01`, the value count (UInt64, little-endian), the key (64 hex digits),
/// the SHA-256 of the values, then the values (f32, little-endian). Reading an entry sets its modification time, which
/// eviction reads as its last use.
public final class DiskEmbeddingCache: VisualEmbeddingCache, @unchecked Sendable {
    public let directory: String
    /// Bytes the entries may take; eviction brings them to nine tenths of this.
    public let maxBytes: Int
    // Invariant: `estimatedBytes` and `writtenSinceScan` are only read and written while holding `lock`.
    private let lock = NSLock()
    /// This process's view of the entries' bytes: the last scan of the directory plus its own writes since.
    private var estimatedBytes: Int
    /// Bytes this process wrote since it last read the directory: other processes write too, so the directory is
    /// read again after every twentieth of `maxBytes`, and all of them together stay within it.
    private var writtenSinceScan = 0
    /// A temporary file older than this was left by a process that died while writing it.
    static let abandonedAfter: Double = 600

    static let magic = Array("INFMVT01".utf8)
    static let headerBytes = 8 + 8 + 64 + 32
    static let suffix = ".vt"

    /// Opens (creating it when missing) the cache in `directory`.
    public init(directory: String, maxBytes: Int) throws {
        self.directory = directory
        self.maxBytes = maxBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        estimatedBytes = Self.scan(directory).reduce(0) { $0 + $1.bytes }
    }

    private func path(_ key: String) -> String { directory + "/" + key + Self.suffix }

    public func tokens(for key: String, count: Int) -> [Float]? {
        guard key.utf8.count == 64, key.allSatisfy(\.isHexDigit) else { return nil }
        let path = path(key)
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        let expected = Self.headerBytes + count * 4
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG, Int(status.st_size) == expected
        else {
            discard(path)
            return nil
        }
        var bytes = [UInt8](repeating: 0, count: expected)
        let read = bytes.withUnsafeMutableBytes { Self.readFully(descriptor, $0) }
        guard read == expected, Array(bytes[0..<8]) == Self.magic,
            UInt64(littleEndian: bytes[8..<16].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }) == count,
            Array(bytes[16..<80]) == Array(key.utf8),
            Array(bytes[80..<112]) == SHA256.digest(of: bytes[Self.headerBytes...])
        else {
            discard(path)
            return nil
        }
        // Its use, for eviction: the modification time is the last time an entry was read or written.
        _ = futimens(descriptor, nil)
        return [Float](unsafeUninitializedCapacity: count) { values, initialized in
            bytes.withUnsafeBytes { raw in
                for index in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: Self.headerBytes + index * 4, as: UInt32.self)
                    values[index] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
            initialized = count
        }
    }

    public func store(_ tokens: [Float], for key: String) {
        guard key.utf8.count == 64, key.allSatisfy(\.isHexDigit) else { return }
        var payload = [UInt8](repeating: 0, count: tokens.count * 4)
        payload.withUnsafeMutableBytes { raw in
            for (index, value) in tokens.enumerated() {
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        var entry = Self.magic
        withUnsafeBytes(of: UInt64(tokens.count).littleEndian) { entry += $0 }
        entry += Array(key.utf8) + SHA256.digest(of: payload) + payload
        // A whole entry under a name of its own, then renamed into place: readers never see half of one.
        let temporary = directory + "/.\(key).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        let written = entry.withUnsafeBytes { Self.writeFully(descriptor, $0) }
        close(descriptor)
        guard written == entry.count, rename(temporary, path(key)) == 0 else {
            unlink(temporary)
            return
        }
        let due = lock.withLock {
            estimatedBytes += entry.count
            writtenSinceScan += entry.count
            return estimatedBytes > maxBytes || writtenSinceScan > maxBytes / 20
        }
        if due { evict() }
    }

    /// Reads the directory, and when the entries (of every process on it) take more than `maxBytes`, removes the
    /// least recently used until they take at most nine tenths of it. Also removes temporary files that processes
    /// which died while writing left behind.
    public func evict() {
        var entries = Self.scan(directory).sorted { $0.used < $1.used }
        var total = entries.reduce(0) { $0 + $1.bytes }
        if total > maxBytes {
            let target = maxBytes / 10 * 9
            while total > target, !entries.isEmpty {
                let oldest = entries.removeFirst()
                if unlink(oldest.path) == 0 || errno == ENOENT { total -= oldest.bytes }
            }
        }
        lock.withLock {
            estimatedBytes = total
            writtenSinceScan = 0
        }
    }

    /// Bytes of the entries now in the directory.
    public var bytes: Int { Self.scan(directory).reduce(0) { $0 + $1.bytes } }

    /// The entries in `directory`, with their sizes and last uses, in one reading of it. Temporary files
    /// (`.<key>.<pid>.<random>.tmp`) older than `abandonedAfter` are removed on the way: a writer renames its file
    /// into place within moments, so an old one belongs to a process that was killed while writing.
    private static func scan(_ directory: String, now: Double = Date().timeIntervalSince1970) -> [(
        path: String, bytes: Int, used: Double
    )] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in
            let entry = name.hasSuffix(suffix) && !name.hasPrefix(".")
            let temporary = name.hasPrefix(".") && name.hasSuffix(".tmp")
            guard entry || temporary else { return nil }
            let path = directory + "/" + name
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
            let modified = Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9
            if temporary {
                if now - modified > abandonedAfter { unlink(path) }
                return nil
            }
            return (path, Int(status.st_size), modified)
        }
    }

    /// Removes an entry of the wrong size, damaged or truncated, so that the tokens are computed and stored again.
    private func discard(_ path: String) {
        var status = stat()
        let size = lstat(path, &status) == 0 ? Int(status.st_size) : 0
        if unlink(path) == 0 { lock.withLock { estimatedBytes = max(0, estimatedBytes - size) } }
    }

    private static func readFully(_ descriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
        var done = 0
        while done < buffer.count {
            let count = Glibc.read(descriptor, buffer.baseAddress! + done, buffer.count - done)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            done += count
        }
        return done
    }

    private static func writeFully(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer) -> Int {
        var done = 0
        while done < buffer.count {
            let count = Glibc.write(descriptor, buffer.baseAddress! + done, buffer.count - done)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            done += count
        }
        return done
    }
}
