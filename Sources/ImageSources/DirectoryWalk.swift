// The files of a directory tree in sorted order, one directory's entries held at a time: a tree of millions of images
// is listed without holding its paths.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Walking a directory tree for `enqueue --dir`.
enum DirectoryWalk {
    /// Calls `body` with the path and the path relative to `root` of every file under `root` (symbolic links to
    /// files included; symbolic links to directories not followed, so that a link cannot make a loop), in the order
    /// of their sorted paths. A directory that cannot be read is passed to `unreadable` with the reason, and the walk
    /// goes on.
    static func files(
        under root: String, unreadable: (String, String) -> Void, _ body: (String, String) throws -> Void
    ) throws {
        try walk(root, relative: "", unreadable: unreadable, body)
    }

    private struct Entry {
        let name: String
        let path: String
        let isDirectory: Bool
        /// The name as it sorts within the full paths: a directory's with the `/` that follows it.
        var key: String { isDirectory ? name + "/" : name }
    }

    private static func walk(
        _ directory: String, relative: String, unreadable: (String, String) -> Void,
        _ body: (String, String) throws -> Void
    ) throws {
        guard let entries = list(directory, unreadable: unreadable) else { return }
        for entry in entries {
            let inner = relative.isEmpty ? entry.name : relative + "/" + entry.name
            if entry.isDirectory {
                try walk(entry.path, relative: inner, unreadable: unreadable, body)
            } else {
                try body(entry.path, inner)
            }
        }
    }

    /// A directory's files and subdirectories, sorted; nil when it cannot be read.
    private static func list(_ directory: String, unreadable: (String, String) -> Void) -> [Entry]? {
        guard let handle = opendir(directory) else {
            unreadable(directory, String(cString: strerror(errno)))
            return nil
        }
        defer { closedir(handle) }
        var entries: [Entry] = []
        while true {
            errno = 0
            guard let pointer = readdir(handle) else {
                if errno != 0 { unreadable(directory, String(cString: strerror(errno))) }
                break
            }
            let name = withUnsafeBytes(of: pointer.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            switch Int32(pointer.pointee.d_type) {
            case Int32(DT_DIR): entries.append(Entry(name: name, path: path, isDirectory: true))
            case Int32(DT_REG): entries.append(Entry(name: name, path: path, isDirectory: false))
            case Int32(DT_LNK):
                // A link to a file is that file; a link to a directory is left out.
                var status = stat()
                if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG {
                    entries.append(Entry(name: name, path: path, isDirectory: false))
                }
            case Int32(DT_UNKNOWN):
                // File systems that do not fill in the type.
                var status = stat()
                guard lstat(path, &status) == 0 else { continue }
                let kind = status.st_mode & S_IFMT
                if kind == S_IFDIR {
                    entries.append(Entry(name: name, path: path, isDirectory: true))
                } else if kind == S_IFREG
                    || (kind == S_IFLNK && stat(path, &status) == 0
                        && status.st_mode & S_IFMT == S_IFREG)
                {
                    entries.append(Entry(name: name, path: path, isDirectory: false))
                }
            default: continue
            }
        }
        return entries.sorted { $0.key < $1.key }
    }
}
