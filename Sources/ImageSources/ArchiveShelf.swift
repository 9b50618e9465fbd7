// Archives open for reading members in place: each archive is mapped and indexed once per process (tar headers or
// the zip central directory) and kept while its file is unchanged; a member's bytes are sliced out (tar, stored
// zip) or inflated (deflated zip), never extracted to disk.

import CZlib
import Foundation
import Tensors

#if canImport(Glibc)
    import Glibc
#endif

/// The open archives of a process. Thread-safe.
public final class ArchiveShelf: @unchecked Sendable {
    private enum Index {
        case tar(MappedFile, TarIndex)
        case zip(ZipArchive)
    }

    private struct Shelved {
        let index: Index
        let file: FileIdentity
    }

    /// What tells one version of a file from another: its device and inode (a file replaced by rename is another),
    /// its size, and the times its contents and its inode last changed (a copy that keeps the old modification
    /// time, `rsync -a`, still changes the latter).
    private struct FileIdentity: Equatable {
        let device: UInt64, inode: UInt64, size: Int
        let modified: Int64, modifiedNanoseconds: Int, changed: Int64, changedNanoseconds: Int

        init(_ status: stat) {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
            size = Int(status.st_size)
            modified = Int64(status.st_mtim.tv_sec)
            modifiedNanoseconds = Int(status.st_mtim.tv_nsec)
            changed = Int64(status.st_ctim.tv_sec)
            changedNanoseconds = Int(status.st_ctim.tv_nsec)
        }
    }

    // Invariant: `shelved` and `recent` are only read and written while holding `lock`.
    private let lock = NSLock()
    private var shelved: [String: Shelved] = [:]
    /// Keys (the kind and the path) from least to most recently used; past `capacity`, the least recent is let go
    /// (unmapped once no reader holds it).
    private var recent: [String] = []
    public let capacity: Int

    public init(capacity: Int = 256) {
        self.capacity = max(1, capacity)
    }

    /// The regular members of the archive at `path` (a zip file when its name ends in .zip, a tar file otherwise),
    /// in archive order, and why listing stopped early, if it did.
    public func members(of path: String) throws -> (names: [String], problem: String?) {
        switch try index(path, zip: path.lowercased().hasSuffix(".zip")) {
        case let .tar(_, index): return (index.names, index.problem)
        case let .zip(archive): return (archive.names.filter { !$0.hasSuffix("/") }, nil)
        }
    }

    /// The bytes of `member` of the zip file (`zip`) or tar file at `path`, at most `limit` of them. The kind is the
    /// URI's, not `path`'s name: `path` is where links led, whose name need not end in .zip.
    public func read(member: String, of path: String, zip: Bool, uri: String, limit: Int) throws -> [UInt8] {
        func fail(_ reason: String) -> ImageSourceError { ImageSourceError(source: uri, reason: reason) }
        switch try index(path, zip: zip, uri: uri) {
        case let .tar(file, index):
            guard let range = index.members[member] else {
                throw fail(
                    "no member \(member) in \(path)" + (index.problem.map { " (the archive stops early: \($0))" } ?? "")
                )
            }
            guard range.count <= limit else { throw fail("\(range.count) bytes, over the \(limit)-byte limit") }
            return Array(file.bytes[range])
        case let .zip(archive):
            guard let entry = archive.entries[member] else { throw fail("no member \(member) in \(path)") }
            guard entry.uncompressedSize <= limit else {
                throw fail("\(entry.uncompressedSize) bytes, over the \(limit)-byte limit")
            }
            let data = UnsafeRawBufferPointer(rebasing: archive.file.bytes[entry.data])
            let bytes: [UInt8]
            switch entry.method {
            case 0:
                // Stored: the data is the member, so the limit checked above must hold for it too.
                guard data.count == entry.uncompressedSize else {
                    throw fail(
                        "the stored member's sizes disagree (\(data.count) bytes stored, \(entry.uncompressedSize) "
                            + "declared)")
                }
                bytes = Array(data)
            case 8: bytes = try Self.inflate(data, size: entry.uncompressedSize, uri: uri)
            default: throw fail("zip compression method \(entry.method) is not supported (stored or deflated only)")
            }
            let crc = Self.crc32(of: bytes)
            guard crc == entry.crc32 else { throw fail("the member is damaged: its CRC-32 does not match") }
            return bytes
        }
    }

    private func index(_ path: String, zip: Bool, uri: String? = nil) throws -> Index {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw ImageSourceError(
                source: uri ?? path, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        let identity = FileIdentity(status)
        let key = (zip ? "zip:" : "tar:") + path
        let cached: Index? = lock.withLock {
            guard let found = shelved[key], found.file == identity else { return nil }
            touch(key)
            return found.index
        }
        if let cached { return cached }
        let index: Index
        do {
            let file = try MappedFile(path: path)
            index = zip ? .zip(try ZipArchive(file: file)) : .tar(file, TarIndex(bytes: file.bytes))
        } catch {
            throw ImageSourceError(source: uri ?? path, reason: "\(error)")
        }
        lock.withLock {
            shelved[key] = Shelved(index: index, file: identity)
            touch(key)
            while recent.count > capacity { shelved[recent.removeFirst()] = nil }
        }
        return index
    }

    /// Marks `key` most recently used (under the lock).
    private func touch(_ key: String) {
        if let at = recent.lastIndex(of: key) { recent.remove(at: at) }
        recent.append(key)
    }

    /// CRC-32 of `bytes`, in runs that zlib's 32-bit lengths hold.
    static func crc32(of bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            var crc: uLong = 0
            for start in stride(from: 0, to: buffer.count, by: 1 << 30) {
                let count = min(1 << 30, buffer.count - start)
                crc = CZlib.crc32(crc, buffer.baseAddress! + start, uInt(count))
            }
            return UInt32(crc)
        }
    }

    /// Raw deflate, as zip entries hold it, into exactly `size` bytes. Inflating reads only as much of `data` as
    /// the stream takes, so a compressed size past zlib's 32-bit lengths (which a member of at most `size` bytes
    /// never needs) is cut to them.
    static func inflate(_ data: UnsafeRawBufferPointer, size: Int, uri: String) throws -> [UInt8] {
        guard size <= Int(UInt32.max) else {
            throw ImageSourceError(source: uri, reason: "\(size) bytes: over the 4 GiB zlib inflates at once")
        }
        var output = [UInt8](repeating: 0, count: size)
        var stream = z_stream()
        guard infmllm_inflate_raw_init(&stream) == Z_OK else {
            throw ImageSourceError(source: uri, reason: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        let status: Int32 = output.withUnsafeMutableBytes { out in
            stream.next_in = UnsafeMutablePointer(mutating: data.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(min(data.count, Int(UInt32.max)))
            stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(size)
            return CZlib.inflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
            throw ImageSourceError(source: uri, reason: "the deflated member is damaged: \(message)")
        }
        return output
    }
}
