// Reading a list or a manifest a line (or a CSV record) at a time through a fixed buffer, so that a file of millions
// of lines is never held whole.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The bytes of a file, read in 1 MiB pieces.
final class FileBytes {
    let path: String
    /// Whether the file is a regular file (not a pipe or a device), which can be read twice.
    let isRegularFile: Bool
    private let descriptor: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var position = 0
    private var end = 0
    private var exhausted = false

    /// The path that names standard input.
    static let standardInput = "-"

    /// Opens `path` (`-`: standard input, which a second reader finds where the first left it); `what` names the
    /// file in the error ("the manifest", "the URL list").
    init(path: String, what: String) throws {
        self.path = path
        var status = stat()
        descriptor =
            path == Self.standardInput
            ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0) : open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ImageSourceError(source: path, reason: "cannot read \(what): \(String(cString: strerror(errno)))")
        }
        guard fstat(descriptor, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw ImageSourceError(source: path, reason: "cannot read \(what): \(reason)")
        }
        guard status.st_mode & S_IFMT != S_IFDIR else {
            close(descriptor)
            throw ImageSourceError(source: path, reason: "cannot read \(what): it is a directory")
        }
        isRegularFile = status.st_mode & S_IFMT == S_IFREG
    }

    deinit { close(descriptor) }

    /// The next byte, or nil at the end of the file.
    @inline(__always)
    func next() throws -> UInt8? {
        if position == end {
            guard try refill() else { return nil }
        }
        defer { position += 1 }
        return buffer[position]
    }

    private func refill() throws -> Bool {
        guard !exhausted else { return false }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw ImageSourceError(
                    source: path, reason: "reading stopped part way: \(String(cString: strerror(errno)))")
            }
            position = 0
            end = count
            exhausted = count == 0
            return count > 0
        }
    }
}

/// A file's lines, ended by LF, CRLF (a file written on Windows) or CR, numbered from 1 as a text editor shows them.
/// A line over `maximumBytes` comes back as `nil` text (its bytes are skipped), so that one endless line cannot take
/// the memory.
struct FileLines {
    static let maximumBytes = 1 << 20

    private let bytes: FileBytes
    private var number = 0
    private var afterCR = false

    init(path: String, what: String) throws {
        bytes = try FileBytes(path: path, what: what)
    }

    /// The next line's number and text (nil when over the limit); nil at the end of the file.
    mutating func next() throws -> (number: Int, text: String?)? {
        var line: [UInt8] = []
        var oversized = false
        var sawAny = false
        while let byte = try bytes.next() {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }
            }
            sawAny = true
            if byte == 0x0A || byte == 0x0D {
                afterCR = byte == 0x0D
                number += 1
                return (number, oversized ? nil : String(decoding: line, as: UTF8.self))
            }
            if line.count < Self.maximumBytes {
                line.append(byte)
            } else {
                oversized = true
            }
        }
        guard sawAny else { return nil }
        number += 1
        return (number, oversized ? nil : String(decoding: line, as: UTF8.self))
    }
}
