// `export --format txt`: a caption file per image, where training tools look for one (beside the image, or under a
// folder that mirrors the images'), and names relative to the images' folder.

import ArgumentParser
import Foundation
import ImageSources
import Imaging
import Postgres

extension ExportCommand {
    /// `uri`'s path relative to `--relative-to` when it names an image file under it (a path or a `file://` URI),
    /// standardised, without `..`; nil otherwise.
    func relativeFileName(_ uri: String) -> String? {
        guard let relativeTo, case let .file(path)? = try? ImageLocation(uri) else { return nil }
        let root = URL(fileURLWithPath: relativeTo).standardizedFileURL.path
        let file = URL(fileURLWithPath: path).standardizedFileURL.path
        let prefix = root.hasSuffix("/") ? root : root + "/"
        guard file.hasPrefix(prefix), file.count > prefix.count else { return nil }
        return String(file.dropFirst(prefix.count))
    }

    /// The text file of an image's results under `root`: its relative name for an image file, `<shard>/<key>` for
    /// an archive member; nil for a URL, a file outside `--relative-to`, or a member key that would leave the folder.
    private func textFile(
        for uri: String, under root: URL, namer: inout ShardNamer
    ) -> URL? {
        let location = try? ImageLocation(uri)
        if case .file = location {
            guard let relative = relativeFileName(uri) else { return nil }
            let stem = (relative as NSString).deletingPathExtension
            return root.appendingPathComponent(stem + ".txt")
        }
        guard let (archive, member) = location?.archiveMember else { return nil }
        let key = Self.key(ofMember: member)
        guard Self.isSafe(key: key) else { return nil }
        return root.appendingPathComponent(namer.name(for: Self.shardURI(uri), archive: archive))
            .appendingPathComponent(key + ".txt")
    }

    /// One text file per image with a result: its tasks' outputs, one per line in task order. Rows come by image,
    /// so an image's tasks arrive together. A file that exists is left as it is unless `--overwrite` (a caption
    /// written by hand beside its image), and never is the image's own file (an image named `scan.txt`); a folder
    /// that a symbolic link leads out of `--output` is not written into.
    ///
    /// - Parameters:
    ///   - lines: a row's lines; an image whose rows give none gets an empty file.
    ///   - what: what the files are, for the summary ("text files", "label files").
    ///   - reserved: file names under `directory` that no image's file may take (written by the caller).
    func writeTextFiles(
        store: PostgresJobStore, job: Int64, to directory: String, what: String = "text files", reserved: [String] = [],
        lines: (ExportRow) -> [String]
    ) throws {
        let root = try Self.outputDirectory(directory)
        let resolvedRoot = root.resolvingSymlinksInPath().path
        var namer = ShardNamer()
        // The files written, by a digest of their path bytes (16 bytes each, whatever the job's size): `a.jpg`
        // beside `a.png` would share `a.txt`, and the second is left out rather than overwriting the first.
        var files = NameSet()
        for name in reserved { _ = files.insert(root.appendingPathComponent(name).path) }
        var written = 0, noFile = 0, shared = 0, existing = 0, linked = 0, appended = 0, alreadyAdded = 0, notFile = 0
        func write(_ image: (uri: String, outputs: [String])) throws {
            guard let file = textFile(for: image.uri, under: root, namer: &namer), Self.isInside(file, root) else {
                noFile += 1
                return
            }
            if case let .file(path)? = try? ImageLocation(image.uri),
                URL(fileURLWithPath: path).standardizedFileURL.path == file.path
            {
                noFile += 1
                return
            }
            guard files.insert(file.path) else {
                shared += 1
                return
            }
            // The deepest folder on the way that exists must resolve inside --output (folders made here are real).
            let folder = file.deletingLastPathComponent()
            var existingFolder = folder
            while !FileManager.default.fileExists(atPath: existingFolder.path) && existingFolder.path != root.path {
                existingFolder = existingFolder.deletingLastPathComponent()
            }
            let resolved = existingFolder.resolvingSymlinksInPath().path
            guard resolved == resolvedRoot || resolved.hasPrefix(resolvedRoot == "/" ? "/" : resolvedRoot + "/"),
                (try? FileManager.default.destinationOfSymbolicLink(atPath: file.path)) == nil
            else {
                linked += 1
                return
            }
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var bytes = Data((image.outputs.isEmpty ? "" : image.outputs.joined(separator: "\n") + "\n").utf8)
            var status = stat()
            if lstat(file.path, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFREG else {
                    notFile += 1  // a folder, say, named like the text file
                    return
                }
                if append {
                    // What the file holds stays first, byte for byte, and the outputs start on a line of their own;
                    // a file that ends with them already (an earlier run) is left as it is, so a run can be repeated.
                    var earlier = try Data(contentsOf: file)
                    if !bytes.isEmpty && earlier.count >= bytes.count && earlier.suffix(bytes.count) == bytes {
                        alreadyAdded += 1
                        return
                    }
                    if let last = earlier.last, last != UInt8(ascii: "\n") { earlier.append(UInt8(ascii: "\n")) }
                    bytes = earlier + bytes
                    appended += 1
                } else if !overwrite {
                    existing += 1
                    return
                }
            }
            try bytes.write(to: file, options: .atomic)
            written += 1
        }
        try doneImages(store, job: job) { rows in try write((rows[0].image, rows.flatMap(lines))) }
        var notes: [String] = []
        if noFile > 0 {
            notes.append(
                "\(noFile) images with no file of their own (URLs, unsafe member names, "
                    + (relativeTo == nil
                        ? "image files: name their folder with --relative-to)" : "files outside --relative-to)"))
        }
        if shared > 0 { notes.append("\(shared) whose file another image's name took (a.jpg, a.png) or is reserved") }
        if existing > 0 { notes.append("\(existing) whose file exists (--overwrite replaces them)") }
        if linked > 0 { notes.append("\(linked) in folders that symbolic links lead out of \(directory)") }
        if notFile > 0 { notes.append("\(notFile) whose file's name something other than a file takes") }
        if alreadyAdded > 0 { notes.append("\(alreadyAdded) whose file ends with these outputs already (--append)") }
        let note = notes.isEmpty ? "" : "; left out: " + notes.joined(separator: "; ")
        let added = appended > 0 ? " (\(appended) of them added to)" : ""
        FileHandle.standardError.write(Data("wrote \(written) \(what) to \(directory)\(added)\(note)\n".utf8))
    }
}

/// Names met, each kept as 16 bytes of its SHA-256 whatever its length: an export of millions of files remembers
/// which it wrote in a few tens of MB.
struct NameSet {
    private var digests = Set<[UInt8]>()

    /// Adds `name`; false when it was met already.
    mutating func insert(_ name: String) -> Bool {
        digests.insert(Array(SHA256.digest(of: Array(name.utf8)).prefix(16))).inserted
    }
}
