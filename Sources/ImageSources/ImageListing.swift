// Where `enqueue` finds images: a directory tree filtered by globs, explicit paths or URLs, a JSONL, CSV or Parquet
// manifest, a list of URLs, and the image members of tar and zip archives.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An image to enqueue and its text input (question or expression; empty for captions).
public struct ListedImage: Sendable, Hashable {
    public var uri: String
    public var text: String
    /// A manifest line's other fields, as a JSON object with sorted keys; nil when it had none.
    public var metadata: String?

    public init(uri: String, text: String, metadata: String? = nil) {
        self.uri = uri
        self.text = text
        self.metadata = metadata
    }
}

/// Listing images for `enqueue`.
public enum ImageListing {
    public static let defaultIncludes = ["*.jpg", "*.jpeg", "*.png", "*.webp", "*.gif", "*.heic", "*.heif", "*.avif"]
    /// The longest image URI and question or expression a manifest line may hold (UTF-8 bytes).
    public static let maximumPathBytes = 4096
    public static let maximumTextBytes = 8192
    /// The most a manifest line's other fields may take, as JSON.
    public static let maximumMetadataBytes = 8192

    /// A manifest or URL-list line that was not enqueued, and why; `file` names the manifest when a pattern named
    /// several.
    public struct Refusal: Encodable, Sendable {
        public let line: Int
        public let reason: String
        public let file: String?
    }

    /// What to list: each source is optional.
    public struct Request: Sendable {
        /// Whether the task takes a question or expression (`textName` names it: "question", "expression").
        public var takesText: Bool
        public var textName: String
        /// The text for every image, when not per image.
        public var sharedText: String
        public var paths: [String] = []
        public var directory: String?
        public var include: [String] = []
        public var exclude: [String] = []
        /// A manifest file, or a pattern of several: a glob or braces (`part-{00000..00031}.parquet`, also in a
        /// Parquet URL), read in turn.
        public var manifest: String?
        /// The manifest's field (JSONL) or column (CSV, Parquet) that holds each image's path or URL.
        public var imageColumn = "image"
        /// The one that holds each image's text, when the task takes one; nil: `textName`, else "text".
        public var textColumn: String?

        /// The manifest's other fields kept with each task; nil: all of them.
        public var fields: [String]?

        /// Whether the other field `name` is kept with each task.
        func keeps(_ name: String) -> Bool { fields?.contains(name) ?? true }

        /// The fields a manifest's text is looked for in, the first found taken.
        var textColumns: [String] { textColumn.map { [$0] } ?? [textName, "text"] }
        /// A file of URLs (or paths), one per line.
        public var urls: String?
        /// Tar and zip files (or globs of them), and URLs of tar and zip files, whose image members are listed; braces
        /// (`{000..099}`, `{a,b}`) are expanded in both.
        public var archives: [String] = []

        public init(takesText: Bool, textName: String, sharedText: String) {
            self.takesText = takesText
            self.textName = textName
            self.sharedText = sharedText
        }
    }

    /// What listing found besides the images.
    public struct Report: Sendable {
        /// The most refusals kept (the first ones); `refusedCount` counts them all.
        public static let keptRefusals = 1000

        /// Bad manifest and URL-list lines, left out: the first `keptRefusals`.
        public private(set) var refused: [Refusal] = []
        /// Every bad line.
        public private(set) var refusedCount = 0
        /// Archive members that are not images by name (text, JSON sidecars, ...), left out.
        public var skippedMembers = 0
        /// Archives that stop early (truncated or damaged), with the reason (their members before that are listed),
        /// and members whose names no task can hold, left out.
        public var damagedArchives: [String] = []
        /// Folders under `--dir` that could not be read (or objects under an S3 prefix that no task can name), with
        /// the reason; the rest of the tree is listed.
        public var unreadableFolders: [String] = []
        /// A Parquet manifest's nested columns (lists, structs, maps), which are not kept with the tasks: each with
        /// what it is, "tags (a list)".
        public var unreadColumns: [String] = []

        public init() {}

        /// The manifest being read, when a pattern named several: refusals carry it.
        var manifestFile: String?

        mutating func refuse(line: Int, _ reason: String) {
            refusedCount += 1
            if refused.count < Self.keptRefusals {
                refused.append(Refusal(line: line, reason: reason, file: manifestFile))
            }
        }
    }

    /// The images to enqueue, each once per text input, in a stable order; bad lines are reported and left out.
    /// Holds them all: `forEach` is for listings of any size.
    public static func collect(_ request: Request, reader: ImageReader, report: inout Report) throws -> [ListedImage] {
        // One task per image and text: the first line's metadata stays.
        var seen = Set<[String]>()
        var images: [ListedImage] = []
        try forEach(request, reader: reader, report: &report) { image in
            if seen.insert([image.uri, image.text]).inserted { images.append(image) }
        }
        return images
    }

    /// Refuses a request whose sources cannot be listed at all (a task that needs text without any, a folder that
    /// is not one, a manifest or list that cannot be read, a CSV manifest without an "image" column, an archive
    /// pattern matching nothing, an archive that cannot be opened or indexed), so that nothing is enqueued from the
    /// others first. A manifest that is not a regular file (a pipe) is opened, not read: its header is checked when
    /// it is listed. Archives are indexed here only while `reader` keeps every index (so listing them reuses the
    /// work); more are only opened, and one that turns out damaged stops the listing where it comes.
    public static func check(_ request: Request, reader: ImageReader) throws {
        if request.takesText && request.sharedText.isEmpty && request.manifest == nil {
            throw ImageSourceError(
                source: "enqueue", reason: "this task needs --\(request.textName) or a manifest")
        }
        let here = FileManager.default.currentDirectoryPath
        for path in request.paths {
            _ = try ImageLocation(resolve(path, against: here))  // an unknown scheme, refused with the reason
        }
        if let directory = request.directory, ImageLocation.isS3(directory) {
            // The first page of the listing: the bucket is there and may be listed.
            struct Listed: Error {}
            do {
                try reader.objects(under: directory) { _ in throw Listed() }
            } catch is Listed {}
        } else if let directory = request.directory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: absolute(directory), isDirectory: &isDirectory),
                isDirectory.boolValue
            else { throw ImageSourceError(source: directory, reason: "not a directory") }
        }
        for manifest in try manifestFiles(request.manifest) {
            if isParquet(manifest) {
                _ = try parquetColumns(manifest, request: request, files: reader)
            } else if ImageLocation.isURL(manifest) {
                throw ImageSourceError(
                    source: manifest,
                    reason: "a manifest is read from a URL only when it is Parquet (.parquet): download JSONL or CSV "
                        + "manifests first, or pass them on standard input (--manifest -)")
            } else {
                let file = try FileBytes(path: manifest, what: "the manifest")
                if isCSV(manifest) && file.isRegularFile { try checkHeader(manifest, request: request) }
            }
        }
        if let urls = request.urls { _ = try FileBytes(path: urls, what: "the URL list") }
        try checkStandardInput([request.manifest, request.urls])
        let archives = try expand(request.archives)
        let local = archives.count { !ImageLocation.isURL($0) }
        for archive in archives {
            if ImageLocation.isURL(archive) {
                try reader.checkRemoteArchive(archive)
            } else if local <= reader.archivesKept {
                _ = try reader.members(ofArchive: archive)
            } else {
                try checkReadable(archive)
            }
        }
    }

    /// Refuses standard input (`-`) named by more than one of `sources` (a manifest, a URL list, an archive list):
    /// it can be read once.
    public static func checkStandardInput(_ sources: [String?]) throws {
        guard sources.filter({ $0 == FileBytes.standardInput }).count > 1 else { return }
        throw ImageSourceError(
            source: "-",
            reason: "standard input (-) can be one of --manifest, --urls and --archive-list, not several")
    }

    /// Refuses a file that cannot be opened for reading or is not a regular file, without reading it.
    static func checkReadable(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw ImageSourceError(source: path, reason: "cannot open it: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw ImageSourceError(source: path, reason: "not a regular file")
        }
    }

    /// Calls `body` with each image to enqueue and its text, in a stable order (arguments, the folder's files by
    /// path, the manifest's lines, the URL list's, the archives' members), holding only one manifest line or one
    /// folder's entries at a time. An image listed twice comes twice. Bad lines are reported and left out. The
    /// request is `check`ed first unless the caller has (`checked`).
    public static func forEach(
        _ request: Request, reader: ImageReader, report: inout Report, checked: Bool = false,
        _ body: (ListedImage) throws -> Void
    ) throws {
        if !checked { try check(request, reader: reader) }
        let sharedText = request.sharedText
        let here = FileManager.default.currentDirectoryPath
        for path in request.paths {
            try body(ListedImage(uri: resolve(path, against: here), text: sharedText))
        }
        if let directory = request.directory {
            let include = request.include.isEmpty ? defaultIncludes : request.include
            if ImageLocation.isS3(directory) {
                let prefixLength = directory.count
                try reader.objects(under: directory) { uri in
                    let relative = String(uri.dropFirst(prefixLength))
                    guard wanted(relative, include: include, exclude: request.exclude) else { return }
                    guard uri.utf8.count <= maximumPathBytes, !uri.contains("\u{0}") else {
                        report.unreadableFolders.append(
                            "\(excerpt(uri)) is left out (a NUL character, or a URI over \(maximumPathBytes) bytes)")
                        return
                    }
                    try body(ListedImage(uri: uri, text: sharedText))
                }
            } else {
                try scan(directory, include: include, exclude: request.exclude, report: &report) {
                    try body(ListedImage(uri: $0, text: sharedText))
                }
            }
        }
        let manifests = try manifestFiles(request.manifest)
        for manifest in manifests {
            report.manifestFile = manifests.count > 1 ? manifest : nil
            if isParquet(manifest) {
                try read(parquet: manifest, request: request, files: reader, report: &report, body)
            } else {
                try read(manifest: manifest, request: request, report: &report, body)
            }
        }
        report.manifestFile = nil
        if let urls = request.urls {
            try read(urls: urls, sharedText: sharedText, report: &report, body)
        }
        for archive in try expand(request.archives) {
            let remote = ImageLocation.isURL(archive) ? try reader.members(ofRemoteArchive: archive) : nil
            let listing =
                try remote.map { (names: $0.names, problem: $0.problem) } ?? reader.members(ofArchive: archive)
            if let problem = listing.problem {
                report.damagedArchives.append("\(archive): \(problem); its members before that are listed")
            }
            for member in listing.names {
                let name = (member as NSString).lastPathComponent
                guard defaultIncludes.contains(where: { matches($0, name) }) else {
                    report.skippedMembers += 1
                    continue
                }
                let uri = remote?.uris[member] ?? ImageLocation.memberURI(archive: archive, member: member)
                // A name no task can hold (a pax path may hold anything) is reported, not written.
                if member.contains("\u{0}") || uri.utf8.count > maximumPathBytes {
                    report.damagedArchives.append(
                        "\(archive): the member \(excerpt(member)) is left out (a NUL character, or a URI over "
                            + "\(maximumPathBytes) bytes)")
                    continue
                }
                try body(ListedImage(uri: uri, text: sharedText))
            }
        }
    }

    public static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// An image as given by a user, as the workers will read it: absolute paths and URIs unchanged; a relative path,
    /// or an archive member whose archive path is relative (`tar:shards/0.tar!/a.jpg`), against the folder `base`
    /// (the working directory for command-line arguments, the file's folder for manifests and URL lists). Anything
    /// with `://` is left for `ImageLocation` to accept or refuse by its scheme.
    public static func resolve(_ image: String, against base: String) -> String {
        let lower = image.lowercased()
        if lower.hasPrefix("tar:") || lower.hasPrefix("zip:") {
            let archive = image.dropFirst(4)
            if archive.hasPrefix("/") || archive.isEmpty || archive.contains("://") { return image }
            // Joined, not standardised: the member's path after `!/` is the archive's own and stays as written.
            return image.prefix(4) + URL(fileURLWithPath: absolute(base)).appendingPathComponent(String(archive)).path
        }
        if image.hasPrefix("/") || image.isEmpty || ImageLocation.hasScheme(image) || image.contains("://") {
            return image
        }
        // A remote manifest's folder: its URL up to the last slash of its path.
        if ImageLocation.isURL(base) { return base + "/" + image }
        return absolute((base as NSString).appendingPathComponent(image))
    }

    /// The lines of a URL list or a JSONL manifest, ended by LF, CRLF (a file written on Windows) or CR. (Swift
    /// reads CRLF as one character, which splitting on LF alone would leave inside a line.)
    public static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
    }

    /// The folder of a file, for resolving the relative paths it lists.
    public static func folder(of file: String) -> String {
        if file == FileBytes.standardInput { return absolute(FileManager.default.currentDirectoryPath) }
        if ImageLocation.isURL(file) {
            let path = file.prefix { $0 != "?" && $0 != "#" }
            return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        }
        return (absolute(file) as NSString).deletingLastPathComponent
    }

    /// The archives a list file names, one per line, as `--archive` takes them (paths, globs, URLs, braces): blank
    /// lines and lines starting with # are skipped, and a relative path is taken from the list's folder (the working
    /// directory for standard input, `-`).
    ///
    /// - Throws: `ImageSourceError` when the list cannot be read, or a line is over 1 MiB (naming its number).
    public static func archivePatterns(fromList path: String) throws -> [String] {
        var lines = try FileLines(path: path, what: "the archive list")
        let base = folder(of: path)
        var patterns: [String] = []
        while let (number, text) = try lines.next() {
            guard let text else {
                throw ImageSourceError(source: path, reason: "line \(number) is over \(FileLines.maximumBytes) bytes")
            }
            let line = text.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            patterns.append(
                ImageLocation.isURL(line) || line.hasPrefix("/")
                    ? line : (base as NSString).appendingPathComponent(line))
        }
        return patterns
    }

    /// Archive paths and URLs with their braces expanded, and the paths' globs, in order: paths absolute, a
    /// pattern that matches nothing an error; URLs as written (their braces expanded), refused when they hold `#`
    /// or `!/`, which the member URIs made from them use.
    /// The manifest files `pattern` names: itself when it is a file (or standard input), else what its glob and
    /// braces match, in order; refused when nothing matches.
    static func manifestFiles(_ pattern: String?) throws -> [String] {
        guard let pattern else { return [] }
        if ImageLocation.isURL(pattern) { return try BraceExpansion.expand(pattern) }
        // A name without glob or brace characters (standard input, a pipe, a missing file) is the file itself.
        if !pattern.contains(where: { "*?[{".contains($0) }) { return [pattern] }
        return try expand([pattern], what: "manifest")
    }

    static func expand(_ patterns: [String], what: String = "archive") throws -> [String] {
        var paths: [String] = []
        for pattern in patterns {
            if ImageLocation.isURL(pattern) {
                if ImageLocation.isS3(pattern) && pattern.contains("*") {
                    throw ImageSourceError(
                        source: pattern,
                        reason: "globs are not expanded in s3:// URLs: name the shards with braces ({00000..00099}) or "
                            + "list them with --archive-list")
                }
                for url in try BraceExpansion.expand(pattern) {
                    guard !url.contains("#") && !url.contains("!/") else {
                        throw ImageSourceError(
                            source: url, reason: "an archive URL cannot hold # or !/ (member URIs use them)")
                    }
                    guard url.utf8.count <= maximumPathBytes / 2 else {
                        throw ImageSourceError(source: url, reason: "the URL is over \(maximumPathBytes / 2) bytes")
                    }
                    paths.append(url)
                }
                continue
            }
            // The pattern as written first (a file whose name holds braces), then with its braces expanded: every
            // name must match, as every URL must answer.
            let literal = globbed(pattern)
            if !literal.isEmpty {
                paths += literal
                continue
            }
            let names = try BraceExpansion.expand(pattern)
            for name in names {
                let found = globbed(name)
                guard !found.isEmpty else {
                    throw ImageSourceError(source: names.count > 1 ? name : pattern, reason: "no \(what) matches")
                }
                paths += found
            }
        }
        return paths
    }

    /// The paths a glob matches, absolute, in glob's sorted order.
    static func globbed(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { absolute(String(cString: $0)) }
        }
    }

    /// A URL list: one URL or absolute path per line; blank lines and lines starting with # are skipped.
    static func read(
        urls path: String, sharedText: String, report: inout Report, _ body: (ListedImage) throws -> Void
    ) throws {
        var lines = try FileLines(path: path, what: "the URL list")
        let base = folder(of: path)
        while let (number, text) = try lines.next() {
            guard let text else {
                report.refuse(line: number, "a line over \(FileLines.maximumBytes) bytes")
                continue
            }
            let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.contains("\u{0}") {
                report.refuse(line: number, "a NUL character (U+0000), which PostgreSQL cannot store")
                continue
            }
            let uri = resolve(line, against: base)
            if uri.utf8.count > maximumPathBytes {
                report.refuse(line: number, "the URL is over \(maximumPathBytes) bytes")
            } else if let reason = (Result { try ImageLocation(uri) }).failureReason {
                report.refuse(line: number, "\(reason): \(excerpt(line))")
            } else {
                try body(ListedImage(uri: uri, text: sharedText))
            }
        }
    }

    /// Files under `directory` whose names match an include glob and no exclude glob (case-insensitive; an exclude
    /// glob also matches the path under `directory`), in the order of their sorted paths.
    static func scan(
        _ directory: String, include: [String], exclude: [String], report: inout Report,
        _ body: (String) throws -> Void
    ) throws {
        var unreadable: [String] = []
        try DirectoryWalk.files(under: absolute(directory), unreadable: { unreadable.append("\($0): \($1)") }) {
            path, relative in
            guard wanted(relative, include: include, exclude: exclude) else { return }
            try body(path)
        }
        report.unreadableFolders += unreadable
    }

    /// Whether the file at `relative` (under the folder or prefix listed) is taken: its name matches an include
    /// glob and neither its name nor `relative` an exclude glob (case-insensitive).
    static func wanted(_ relative: String, include: [String], exclude: [String]) -> Bool {
        let name = (relative as NSString).lastPathComponent
        return include.contains(where: { matches($0, name) })
            && !exclude.contains(where: { matches($0, name) || matches($0, relative) })
    }

    static func matches(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 1 << 4 /* FNM_CASEFOLD */) == 0
    }

    /// JSONL: one object per line with "image" and optionally "question"/"expression" (or "text"; the request's
    /// `imageColumn` and `textColumn` name others). CSV: a header row naming the same columns, fields quoted as
    /// RFC 4180. Read a line (or record) at a time. A bad line (not an object, no image, no text
    /// where the task needs one, a NUL character, which PostgreSQL cannot store, a path or text over the limits, a
    /// line over 1 MiB) is refused with its line number and reason, quoting the user's text only in a short escaped
    /// excerpt, and left out.
    static func read(
        manifest path: String, request: Request, report: inout Report, _ body: (ListedImage) throws -> Void
    ) throws {
        let base = folder(of: path)
        let imageKey = request.imageColumn
        let sharedText = request.sharedText
        func task(image: String, input: String, metadata: [String: Any] = [:]) -> Result<ListedImage, ManifestLineError>
        {
            listedImage(image: image, input: input, metadata: metadata, request: request, base: base)
        }
        func take(_ result: Result<ListedImage, ManifestLineError>, line: Int) throws {
            switch result {
            case .success(let task): try body(task)
            case .failure(let error): report.refuse(line: line, error.reason)
            }
        }
        if isCSV(path) {
            let bytes = try FileBytes(path: path, what: "the manifest")
            guard let header = try CSV.nextRecord(bytes.next), !header.oversized,
                let imageColumn = header.fields.firstIndex(of: imageKey)
            else { throw csvHeaderError(path, imageColumn: imageKey) }
            let columns = header.fields
            let textColumn = request.textColumns.lazy.compactMap { columns.firstIndex(of: $0) }.first
            var number = 1
            while let record = try CSV.nextRecord(bytes.next) {
                number += 1
                let row = record.fields
                if record.oversized {
                    report.refuse(line: number, "a row over \(CSV.maximumBytes) bytes")
                    continue
                }
                if row.count == 1 && row[0].isEmpty { continue }
                guard row.count == columns.count else {
                    report.refuse(line: number, "\(row.count) fields, the header has \(columns.count)")
                    continue
                }
                // The other columns, by their header names, as strings.
                var metadata: [String: Any] = [:]
                for (column, name) in columns.enumerated()
                where column != imageColumn && !(request.takesText && column == textColumn) && request.keeps(name) {
                    metadata[name] = row[column]
                }
                try take(
                    task(image: row[imageColumn], input: textColumn.map { row[$0] } ?? sharedText, metadata: metadata),
                    line: number)
            }
        } else {
            var lines = try FileLines(path: path, what: "the manifest")
            while let (number, text) = try lines.next() {
                guard let line = text else {
                    report.refuse(line: number, "a line over \(FileLines.maximumBytes) bytes")
                    continue
                }
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                    let image = object[imageKey] as? String
                else {
                    report.refuse(line: number, "not an object with an \"\(imageKey)\" string: \(excerpt(line))")
                    continue
                }
                // Every field but the image and the one the text came from (none for a task that takes no text).
                let used = !request.takesText ? nil : request.textColumns.first { object[$0] is String }
                let input = used.flatMap { object[$0] as? String } ?? sharedText
                let metadata = object.filter { $0.key != imageKey && $0.key != used && request.keeps($0.key) }
                try take(task(image: image, input: input, metadata: metadata), line: number)
            }
        }
    }

    /// The task of one manifest line or row, or the reason it cannot be one: its image (resolved against `base`,
    /// the manifest's folder), its text (`input`) and its other fields (`metadata`), each within its limit.
    static func listedImage(
        image: String, input: String, metadata: [String: Any], request: Request, base: String
    ) -> Result<ListedImage, ManifestLineError> {
        if image.isEmpty { return .failure(ManifestLineError("no image")) }
        var metadataJSON: String?
        if !metadata.isEmpty {
            guard
                let data = try? JSONSerialization.data(
                    withJSONObject: metadata, options: [.sortedKeys, .withoutEscapingSlashes])
            else { return .failure(ManifestLineError("fields that are not JSON")) }
            metadataJSON = String(decoding: data, as: UTF8.self)
        }
        if image.contains("\u{0}") || input.contains("\u{0}") || holdsNUL(metadata) {
            return .failure(ManifestLineError("a NUL character (U+0000), which PostgreSQL cannot store"))
        }
        if let metadataJSON, metadataJSON.utf8.count > maximumMetadataBytes {
            return .failure(
                ManifestLineError("the fields besides the image and text are over \(maximumMetadataBytes) bytes"))
        }
        if image.utf8.count > maximumPathBytes {
            return .failure(ManifestLineError("the image path is over \(maximumPathBytes) bytes"))
        }
        if input.utf8.count > maximumTextBytes {
            return .failure(ManifestLineError("the \(request.textName) is over \(maximumTextBytes) bytes"))
        }
        if request.takesText && input.isEmpty {
            return .failure(ManifestLineError("no \(request.textName) for \(excerpt(image))"))
        }
        let uri = resolve(image, against: base)
        if let error = (Result { try ImageLocation(uri) }).failureReason {
            return .failure(ManifestLineError("\(error): \(excerpt(image))"))
        }
        return .success(ListedImage(uri: uri, text: request.takesText ? input : "", metadata: metadataJSON))
    }

    static func isCSV(_ path: String) -> Bool { path.lowercased().hasSuffix(".csv") }

    /// Refuses a CSV manifest whose header row names no image column, or not the text column a request names.
    static func checkHeader(_ path: String, request: Request) throws {
        let bytes = try FileBytes(path: path, what: "the manifest")
        guard let header = try CSV.nextRecord(bytes.next), !header.oversized,
            header.fields.contains(request.imageColumn)
        else { throw csvHeaderError(path, imageColumn: request.imageColumn) }
        if request.takesText, let text = request.textColumn, !header.fields.contains(text) {
            throw ImageSourceError(source: path, reason: "the first row names no \"\(text)\" column")
        }
        if let missing = request.fields?.first(where: { !header.fields.contains($0) }) {
            throw ImageSourceError(source: path, reason: "the first row names no \"\(missing)\" column (--fields)")
        }
    }

    static func csvHeaderError(_ path: String, imageColumn: String) -> ImageSourceError {
        ImageSourceError(source: path, reason: "the first row must name an \"\(imageColumn)\" column")
    }

    /// Whether a JSON value holds U+0000 in a string or a key (jsonb cannot store it).
    static func holdsNUL(_ value: Any) -> Bool {
        switch value {
        case let text as String: text.unicodeScalars.contains("\u{0}")
        case let object as [String: Any]: object.contains { holdsNUL($0.key) || holdsNUL($0.value) }
        case let array as [Any]: array.contains { holdsNUL($0) }
        default: false
        }
    }

    /// At most 40 characters of user text, escaped, for messages.
    public static func excerpt(_ text: some StringProtocol) -> String {
        let head = String(text.prefix(40)).unicodeScalars.map { $0.escaped(asASCII: false) }.joined()
        return "\"" + head + (text.count > 40 ? "…" : "") + "\""
    }
}

extension Result where Failure == Error {
    /// The reason of a failure to parse an image URI, or nil on success.
    fileprivate var failureReason: String? {
        guard case let .failure(error) = self else { return nil }
        return (error as? ImageSourceError)?.reason ?? "\(error)"
    }
}

struct ManifestLineError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
