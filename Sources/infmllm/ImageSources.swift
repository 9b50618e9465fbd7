// Where `enqueue` finds images: a directory tree filtered by globs, explicit paths, or a JSONL/CSV manifest.

import ArgumentParser
import Foundation
import Jobs
import Postgres

#if canImport(Glibc)
    import Glibc
#endif

enum ImageSources {
    static let defaultIncludes = ["*.jpg", "*.jpeg", "*.png"]
    /// The longest image path and question or expression a manifest line may hold (UTF-8 bytes).
    static let maximumPathBytes = 4096
    static let maximumTextBytes = 8192

    /// A manifest line that was not enqueued, and why.
    struct Refusal: Encodable {
        let line: Int
        let reason: String
    }

    /// The tasks to add, each image once per text input, in a stable order; bad manifest lines are collected in
    /// `refused` and left out.
    static func collect(
        kind: TaskKind, paths: [String], directory: String?, include: [String], exclude: [String], manifest: String?,
        question: String?, expression: String?, refused: inout [Refusal]
    ) throws -> [NewTask] {
        let sharedText = (kind == .ground ? expression : question) ?? ""
        if kind.takesTextInput && sharedText.isEmpty && manifest == nil {
            throw ValidationError(
                "\(kind.rawValue) needs --\(kind == .ground ? "expression" : "question") or a manifest")
        }
        var tasks: [NewTask] = paths.map { NewTask(imageURI: absolute($0), inputText: sharedText) }
        if let directory {
            tasks += try scan(directory, include: include.isEmpty ? defaultIncludes : include, exclude: exclude)
                .map { NewTask(imageURI: $0, inputText: sharedText) }
        }
        if let manifest {
            tasks += try read(manifest: manifest, kind: kind, sharedText: sharedText, refused: &refused)
        }
        var seen = Set<NewTask>()
        return tasks.filter { seen.insert($0).inserted }
    }

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Files under `directory` whose names match an include glob and no exclude glob (case-insensitive), sorted.
    static func scan(_ directory: String, include: [String], exclude: [String]) throws -> [String] {
        let root = absolute(directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(directory) is not a directory")
        }
        guard let walker = FileManager.default.enumerator(atPath: root) else {
            throw ValidationError("cannot list \(directory)")
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
    static func read(manifest path: String, kind: TaskKind, sharedText: String, refused: inout [Refusal]) throws
        -> [NewTask]
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let base = URL(fileURLWithPath: absolute(path)).deletingLastPathComponent()
        func resolve(_ image: String) -> String {
            image.hasPrefix("/") ? image : base.appendingPathComponent(image).standardizedFileURL.path
        }
        let textKey = kind == .ground ? "expression" : "question"
        var tasks: [NewTask] = []
        /// The task of one line, or the reason it cannot be one.
        func task(image: String, input: String) -> Result<NewTask, ManifestLineError> {
            if image.isEmpty { return .failure(ManifestLineError("no image")) }
            if image.contains("\u{0}") || input.contains("\u{0}") {
                return .failure(ManifestLineError("a NUL character (U+0000), which PostgreSQL cannot store"))
            }
            if image.utf8.count > maximumPathBytes {
                return .failure(ManifestLineError("the image path is over \(maximumPathBytes) bytes"))
            }
            if input.utf8.count > maximumTextBytes {
                return .failure(ManifestLineError("the \(textKey) is over \(maximumTextBytes) bytes"))
            }
            if kind.takesTextInput && input.isEmpty {
                return .failure(ManifestLineError("no \(textKey) for \(excerpt(image))"))
            }
            return .success(NewTask(imageURI: resolve(image), inputText: kind.takesTextInput ? input : ""))
        }
        func take(_ result: Result<NewTask, ManifestLineError>, line: Int) {
            switch result {
            case .success(let task): tasks.append(task)
            case .failure(let error): refused.append(Refusal(line: line, reason: error.reason))
            }
        }
        if path.lowercased().hasSuffix(".csv") {
            let rows = CSV.rows(text)
            guard let header = rows.first, let imageColumn = header.firstIndex(of: "image") else {
                throw ValidationError("\(path): the first row must name an \"image\" column")
            }
            let textColumn = header.firstIndex(of: textKey) ?? header.firstIndex(of: "text")
            for (number, row) in rows.dropFirst().enumerated() where !(row.count == 1 && row[0].isEmpty) {
                guard row.count == header.count else {
                    refused.append(
                        Refusal(line: number + 2, reason: "\(row.count) fields, the header has \(header.count)"))
                    continue
                }
                take(task(image: row[imageColumn], input: textColumn.map { row[$0] } ?? sharedText), line: number + 2)
            }
        } else {
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                    let image = object["image"] as? String
                else {
                    refused.append(
                        Refusal(line: number + 1, reason: "not an object with an \"image\" string: \(excerpt(line))"))
                    continue
                }
                let input = (object[textKey] as? String) ?? (object["text"] as? String) ?? sharedText
                take(task(image: image, input: input), line: number + 1)
            }
        }
        return tasks
    }

    /// At most 40 characters of user text, escaped, for messages.
    static func excerpt(_ text: some StringProtocol) -> String {
        let head = String(text.prefix(40)).unicodeScalars.map { $0.escaped(asASCII: false) }.joined()
        return "\"" + head + (text.count > 40 ? "…" : "") + "\""
    }
}

struct ManifestLineError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// RFC 4180 CSV: comma-separated, double-quoted fields with "" for a quote, CRLF or LF line ends.
enum CSV {
    static func rows(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, afterQuote = false
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            if quoted {
                if character == "\"" { quoted = false; afterQuote = true } else { field.append(character) }
                continue
            }
            switch character {
            case "\"":
                if afterQuote { field.append("\"") }
                quoted = true
                afterQuote = false
            case ",":
                row.append(field); field = ""; afterQuote = false
            case "\n", "\r\n":
                row.append(field); rows.append(row); row = []; field = ""; afterQuote = false
            case "\r":
                continue
            default:
                field.append(character); afterQuote = false
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}
