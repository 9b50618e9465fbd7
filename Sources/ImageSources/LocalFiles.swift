// Local files as a worker reads them for a task: under the configured roots after resolving symbolic links, regular
// files only, opened without blocking (a FIFO never stalls a read), sized with fstat before reading and read to that
// size at most. Where a path leads is checked before it is opened (opening a device can act on it) and again through
// the opened descriptor (a link swapped in between is not followed out of the roots). A task names a path; the worker, not the task, decides which paths may be read.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Which local files tasks may read, and how they are read.
public struct LocalFiles: Sendable {
    /// The directories under which files may be read, as real paths; nil allows any path.
    public let roots: [String]?

    /// Any local path may be read (still only regular files, within the size limit).
    public static let anywhere = LocalFiles(resolvedRoots: nil)

    private init(resolvedRoots: [String]?) {
        roots = resolvedRoots
    }

    /// - Parameter roots: directories (symbolic links resolved now); nil or empty allows any path.
    /// - Throws: `ImageSourceError` for a root that does not exist or is not a directory.
    public init(roots: [String]? = nil) throws {
        guard let roots, !roots.isEmpty else {
            self.roots = nil
            return
        }
        self.roots = try roots.map { root in
            guard let real = Self.realPath(root) else {
                throw ImageSourceError(source: root, reason: "image root: \(String(cString: strerror(errno)))")
            }
            var status = stat()
            guard stat(real, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
                throw ImageSourceError(source: root, reason: "image root: not a directory")
            }
            return real
        }
    }

    /// Whether `realPath` (already resolved) lies under one of the roots.
    public func allows(realPath: String) -> Bool {
        guard let roots else { return true }
        return roots.contains { root in
            root == "/" || realPath == root || realPath.hasPrefix(root + "/")
        }
    }

    /// The bytes of the file at `path`, at most `limit` of them.
    ///
    /// - Throws: `ImageSourceError` naming `uri` and the reason: outside the roots, not a regular file, on `/proc`
    ///   or `/sys`, empty, over the limit, or unreadable. The file's bytes never appear in a reason.
    public func read(_ path: String, uri: String, limit: Int) throws -> [UInt8] {
        let opened = try open(path, uri: uri)
        defer { close(opened.descriptor) }
        guard opened.size <= limit else {
            throw ImageSourceError(source: uri, reason: "\(opened.size) bytes, over the \(limit)-byte limit")
        }
        var bytes = [UInt8](repeating: 0, count: opened.size)
        var filled = 0
        while filled < opened.size {
            let count = bytes.withUnsafeMutableBytes { buffer in
                pread(opened.descriptor, buffer.baseAddress! + filled, opened.size - filled, off_t(filled))
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw ImageSourceError(source: uri, reason: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }  // the file shrank while it was read
            filled += count
        }
        if filled < bytes.count { bytes.removeLast(bytes.count - filled) }
        return bytes
    }

    /// The real path of the regular file at `path`, checked as `read` checks it, for files that are mapped rather
    /// than read (archives).
    public func admit(_ path: String, uri: String) throws -> String {
        let opened = try open(path, uri: uri)
        close(opened.descriptor)
        return opened.realPath
    }

    private struct Opened {
        let descriptor: Int32
        let size: Int
        let realPath: String
    }

    /// Opens `path` read-only without blocking, then checks what was opened: its type, file system, real path
    /// (through the descriptor, so no link swapped in after the check is followed) and size.
    private func open(_ path: String, uri: String) throws -> Opened {
        func refuse(_ reason: String) -> ImageSourceError { ImageSourceError(source: uri, reason: reason) }
        let outside = "outside the worker's image roots (--image-roots)"
        let kernel = "a file of the kernel's /proc, /sys or /dev, not an image"
        // Before opening anything (opening a device can act on it): where the path leads now.
        if let resolved = Self.realPath(path) {
            guard allows(realPath: resolved) else { throw refuse(outside) }
            guard !Self.isKernelFile(resolved) else { throw refuse(kernel) }
        } else if roots != nil, !allows(realPath: URL(fileURLWithPath: path).standardizedFileURL.path) {
            throw refuse(outside)  // the same answer whether or not such a file exists
        }
        let descriptor = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else {
            let reason = errno == ENOENT ? "no such file" : String(cString: strerror(errno))
            throw refuse(reason)
        }
        var keep = false
        defer { if !keep { close(descriptor) } }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw refuse("cannot stat: \(String(cString: strerror(errno)))") }
        // Again on what was opened, through its descriptor: a link swapped in since is not followed out of the
        // roots. With roots, a descriptor whose path cannot be read is refused rather than guessed.
        guard let realPath = Self.realPath(ofDescriptor: descriptor) ?? (roots == nil ? Self.realPath(path) : nil)
        else {
            throw refuse("cannot resolve the path of what was opened")
        }
        guard allows(realPath: realPath) else { throw refuse(outside) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw refuse("not a regular file (\(Self.kind(status.st_mode)))")
        }
        if Self.isKernelFile(realPath) { throw refuse(kernel) }
        guard status.st_size > 0 else { throw refuse("an empty file") }
        keep = true
        return Opened(descriptor: descriptor, size: Int(status.st_size), realPath: realPath)
    }

    /// Where the kernel's made-up files and devices live (their sizes and contents are produced when read).
    static let kernelDirectories = ["/proc", "/sys", "/dev"]

    static func isKernelFile(_ realPath: String) -> Bool {
        kernelDirectories.contains { realPath == $0 || realPath.hasPrefix($0 + "/") }
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a file"
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// What `/proc/self/fd/N` links to: the path the descriptor was opened at, links resolved.
    static func realPath(ofDescriptor descriptor: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &buffer, Int(PATH_MAX))
        guard count > 0, buffer[0] == CChar(UInt8(ascii: "/")) else { return nil }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? nil : path
    }
}
