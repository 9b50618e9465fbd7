// Where an export's text goes, written as it is produced: standard output, or a file that appears under its name only
// once complete (written beside it, then renamed into place), so a reader never sees half an export.

import Foundation

final class ExportSink {
    private let handle: FileHandle
    private let partial: String?
    private let destination: String?
    private var buffer = Data()
    private var finished = false

    /// Standard output when `path` is nil.
    init(path: String?) throws {
        guard let path else {
            handle = FileHandle.standardOutput
            partial = nil
            destination = nil
            return
        }
        var isDirectory: ObjCBool = false
        if path.hasSuffix("/")
            || (FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue)
        {
            throw ExportError("--output \(path) is a directory; this format writes one file")
        }
        let partial = path + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: nil) else {
            throw ExportError("cannot write \(partial)")
        }
        guard let handle = FileHandle(forWritingAtPath: partial) else { throw ExportError("cannot open \(partial)") }
        self.handle = handle
        self.partial = partial
        destination = path
    }

    deinit {
        if !finished, let partial {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: partial)
        }
    }

    func write(_ text: String) throws {
        try write(Data(text.utf8))
    }

    func write(_ bytes: Data) throws {
        buffer.append(bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Writes what is left and puts the file in place: one rename, which replaces a file of that name at once.
    func finish() throws {
        try flush()
        guard let partial, let destination else {
            finished = true
            return
        }
        try handle.close()
        guard rename(partial, destination) == 0 else {
            throw ExportError("cannot move \(partial) to \(destination): \(String(cString: strerror(errno)))")
        }
        finished = true
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// An export that cannot be written.
struct ExportError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
