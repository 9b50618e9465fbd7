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
            return try ZipMember.decode(
                UnsafeRawBufferPointer(rebasing: archive.file.bytes[entry.data]), method: entry.method,
                size: entry.uncompressedSize, crc32: entry.crc32, uri: uri)
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
}
