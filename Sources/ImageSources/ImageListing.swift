// Where `enqueue` finds images: a directory tree filtered by globs, explicit paths or URLs, a JSONL/CSV manifest, a
// list of URLs, and the image members of tar and zip archives.

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
    public static let defaultIncludes = ["*.jpg", "*.jpeg", "*.png"]
    /// The longest image URI and question or expression a manifest line may hold (UTF-8 bytes).
    public static let maximumPathBytes = 4096
    public static let maximumTextBytes = 8192
    /// The most a manifest line's other fields may take, as JSON.
    public static let maximumMetadataBytes = 8192

    /// A manifest or URL-list line that was not enqueued, and why.
    public struct Refusal: Encodable, Sendable {
        public let line: Int
        public let reason: String
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
        public var manifest: String?
        /// A file of URLs (or paths), one per line.
        public var urls: String?
        /// Tar and zip files (or globs of them) whose image members are listed.
        public var archives: [String] = []

        public init(takesText: Bool, textName: String, sharedText: String) {
            self.takesText = takesText
            self.textName = textName
            self.sharedText = sharedText
        }
    }

    /// What listing found besides the images.
    public struct Report: Sendable {
        /// Bad manifest and URL-list lines, left out.
        public var refused: [Refusal] = []
        /// Archive members that are not images by name (text, JSON sidecars, ...), left out.
        public var skippedMembers = 0
        /// Archives that stop early (truncated or damaged), with the reason; their members before that are listed.
        public var damagedArchives: [String] = []

        public init() {}
    }

    /// The images to enqueue, each once per text input, in a stable order; bad lines are reported and left out.
    public static func collect(_ request: Request, reader: ImageReader, report: inout Report) throws -> [ListedImage] {
        let sharedText = request.sharedText
        if request.takesText && sharedText.isEmpty && request.manifest == nil {
            throw ImageSourceError(
                source: "enqueue", reason: "this task needs --\(request.textName) or a manifest")
        }
        let here = FileManager.default.currentDirectoryPath
        var tasks: [ListedImage] = try request.paths.map { path in
            let uri = resolve(path, against: here)
            _ = try ImageLocation(uri)  // an unknown scheme, refused with the reason
            return ListedImage(uri: uri, text: sharedText)
        }
        if let directory = request.directory {
            tasks += try scan(
                directory, include: request.include.isEmpty ? defaultIncludes : request.include,
                exclude: request.exclude
            ).map { ListedImage(uri: $0, text: sharedText) }
        }
        if let manifest = request.manifest {
            tasks += try read(
                manifest: manifest, takesText: request.takesText, textName: request.textName, sharedText: sharedText,
                refused: &report.refused)
        }
        if let urls = request.urls {
            tasks += try read(urls: urls, sharedText: sharedText, refused: &report.refused)
        }
        for archive in try expand(request.archives) {
            let listing = try reader.members(ofArchive: archive)
            if let problem = listing.problem { report.damagedArchives.append("\(archive): \(problem)") }
            for member in listing.names {
                let name = (member as NSString).lastPathComponent
                guard defaultIncludes.contains(where: { matches($0, name) }) else {
                    report.skippedMembers += 1
                    continue
                }
                tasks.append(
                    ListedImage(uri: ImageLocation.memberURI(archive: archive, member: member), text: sharedText))
            }
        }
        // One task per image and text: the first line's metadata stays.
        var seen = Set<[String]>()
        return tasks.filter { seen.insert([$0.uri, $0.text]).inserted }
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
            if archive.hasPrefix("/") || archive.isEmpty { return image }
            // Joined, not standardised: the member's path after `!/` is the archive's own and stays as written.
            return image.prefix(4) + URL(fileURLWithPath: absolute(base)).appendingPathComponent(String(archive)).path
        }
        if image.hasPrefix("/") || image.isEmpty || ImageLocation.hasScheme(image) || image.contains("://") {
            return image
        }
        return absolute((base as NSString).appendingPathComponent(image))
    }

    /// The lines of a URL list or a JSONL manifest, ended by LF, CRLF (a file written on Windows) or CR. (Swift
    /// reads CRLF as one character, which splitting on LF alone would leave inside a line.)
    public static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
    }

    /// The folder of a file, for resolving the relative paths it lists.
    public static func folder(of file: String) -> String {
        (absolute(file) as NSString).deletingLastPathComponent
    }

    /// Archive paths with their globs expanded, absolute, in order; a pattern that matches nothing is an error.
    static func expand(_ patterns: [String]) throws -> [String] {
        var paths: [String] = []
        for pattern in patterns {
            var result = glob_t()
            defer { globfree(&result) }
            guard glob(pattern, 0, nil, &result) == 0, result.gl_pathc > 0 else {
                throw ImageSourceError(source: pattern, reason: "no archive matches")
            }
            for index in 0..<Int(result.gl_pathc) {
                if let path = result.gl_pathv[index] { paths.append(absolute(String(cString: path))) }
            }
        }
        return paths
    }

    /// A URL list: one URL or absolute path per line; blank lines and lines starting with # are skipped.
    static func read(urls path: String, sharedText: String, refused: inout [Refusal]) throws -> [ListedImage] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageSourceError(source: path, reason: "cannot read the URL list")
        }
        let base = folder(of: path)
        var images: [ListedImage] = []
        for (number, raw) in lines(String(decoding: data, as: UTF8.self)).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.contains("\u{0}") {
                refused.append(
                    Refusal(line: number + 1, reason: "a NUL character (U+0000), which PostgreSQL cannot store"))
                continue
            }
            let uri = resolve(line, against: base)
            if uri.utf8.count > maximumPathBytes {
                refused.append(Refusal(line: number + 1, reason: "the URL is over \(maximumPathBytes) bytes"))
            } else if let reason = (Result { try ImageLocation(uri) }).failureReason {
                refused.append(Refusal(line: number + 1, reason: "\(reason): \(excerpt(line))"))
            } else {
                images.append(ListedImage(uri: uri, text: sharedText))
            }
        }
        return images
    }

    /// Files under `directory` whose names match an include glob and no exclude glob (case-insensitive), sorted.
    static func scan(_ directory: String, include: [String], exclude: [String]) throws -> [String] {
        let root = absolute(directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ImageSourceError(source: directory, reason: "not a directory")
        }
        guard let walker = FileManager.default.enumerator(atPath: root) else {
            throw ImageSourceError(source: directory, reason: "cannot list it")
        }
        var found: [String] = []
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            guard include.contains(where: { matches($0, name) }),
                !exclude.contains(where: { matches($0, name) || matches($0, relative) })
            else { continue }
            let path = (root as NSString).appendingPathComponent(relative)
            var entryIsDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &entryIsDirectory), !entryIsDirectory.boolValue
            {
                found.append(path)
            }
        }
        return found.sorted()
    }

    static func matches(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 1 << 4 /* FNM_CASEFOLD */) == 0
    }

    /// JSONL: one object per line with "image" and optionally "question"/"expression". CSV: a header row naming
    /// "image" and optionally "question"/"expression" (or "text"), fields quoted as RFC 4180. Every line is
    /// checked before anything is written; a bad line (not an object, no image, no text where the task needs one,
    /// a NUL character, which PostgreSQL cannot store, or a path or text over the limits) is refused with its line
    /// number and reason, quoting the user's text only in a short escaped excerpt.
    static func read(
        manifest path: String, takesText: Bool, textName textKey: String, sharedText: String, refused: inout [Refusal]
    ) throws -> [ListedImage] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageSourceError(source: path, reason: "cannot read the manifest")
        }
        let text = String(decoding: data, as: UTF8.self)
        let base = folder(of: path)
        var tasks: [ListedImage] = []
        /// The task of one line, or the reason it cannot be one.
        func task(image: String, input: String, metadata: [String: Any] = [:]) -> Result<ListedImage, ManifestLineError>
        {
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
                return .failure(ManifestLineError("the \(textKey) is over \(maximumTextBytes) bytes"))
            }
            if takesText && input.isEmpty {
                return .failure(ManifestLineError("no \(textKey) for \(excerpt(image))"))
            }
            let uri = resolve(image, against: base)
            if let error = (Result { try ImageLocation(uri) }).failureReason {
                return .failure(ManifestLineError("\(error): \(excerpt(image))"))
            }
            return .success(ListedImage(uri: uri, text: takesText ? input : "", metadata: metadataJSON))
        }
        func take(_ result: Result<ListedImage, ManifestLineError>, line: Int) {
            switch result {
            case .success(let task): tasks.append(task)
            case .failure(let error): refused.append(Refusal(line: line, reason: error.reason))
            }
        }
        if path.lowercased().hasSuffix(".csv") {
            let rows = CSV.rows(text)
            guard let header = rows.first, let imageColumn = header.firstIndex(of: "image") else {
                throw ImageSourceError(source: path, reason: "the first row must name an \"image\" column")
            }
            let textColumn = header.firstIndex(of: textKey) ?? header.firstIndex(of: "text")
            for (number, row) in rows.dropFirst().enumerated() where !(row.count == 1 && row[0].isEmpty) {
                guard row.count == header.count else {
                    refused.append(
                        Refusal(line: number + 2, reason: "\(row.count) fields, the header has \(header.count)"))
                    continue
                }
                // The other columns, by their header names, as strings.
                var metadata: [String: Any] = [:]
                for (column, name) in header.enumerated()
                where column != imageColumn && !(takesText && column == textColumn) {
                    metadata[name] = row[column]
                }
                take(
                    task(image: row[imageColumn], input: textColumn.map { row[$0] } ?? sharedText, metadata: metadata),
                    line: number + 2)
            }
        } else {
            for (number, line) in lines(text).enumerated() {
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                    let image = object["image"] as? String
                else {
                    refused.append(
                        Refusal(line: number + 1, reason: "not an object with an \"image\" string: \(excerpt(line))"))
                    continue
                }
                let input = (object[textKey] as? String) ?? (object["text"] as? String) ?? sharedText
                // Every field but the image and the one the text came from (none for a task that takes no text).
                let used =
                    !takesText ? nil : object[textKey] is String ? textKey : object["text"] is String ? "text" : nil
                let metadata = object.filter { $0.key != "image" && $0.key != used }
                take(task(image: image, input: input, metadata: metadata), line: number + 1)
            }
        }
        return tasks
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
