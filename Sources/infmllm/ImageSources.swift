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

    /// The tasks to add, each image once per text input, in a stable order.
    static func collect(
        kind: TaskKind, paths: [String], directory: String?, include: [String], exclude: [String], manifest: String?,
        question: String?, expression: String?
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
            tasks += try read(manifest: manifest, kind: kind, sharedText: sharedText)
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
    /// "image" and optionally "question"/"expression" (or "text"), fields quoted as RFC 4180.
    static func read(manifest path: String, kind: TaskKind, sharedText: String) throws -> [NewTask] {
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
        if path.lowercased().hasSuffix(".csv") {
            let rows = CSV.rows(text)
            guard let header = rows.first, let imageColumn = header.firstIndex(of: "image") else {
                throw ValidationError("\(path): the first row must name an \"image\" column")
            }
            let textColumn = header.firstIndex(of: textKey) ?? header.firstIndex(of: "text")
            for (number, row) in rows.dropFirst().enumerated() where !(row.count == 1 && row[0].isEmpty) {
                guard row.count == header.count else {
                    throw ValidationError("\(path):\(number + 2): \(row.count) fields, the header has \(header.count)")
                }
                let input = textColumn.map { row[$0] } ?? sharedText
                tasks.append(NewTask(imageURI: resolve(row[imageColumn]), inputText: kind.takesTextInput ? input : ""))
            }
        } else {
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                    let image = object["image"] as? String, !image.isEmpty
                else { throw ValidationError("\(path):\(number + 1): not an object with an \"image\" string") }
                let input = (object[textKey] as? String) ?? (object["text"] as? String) ?? sharedText
                tasks.append(NewTask(imageURI: resolve(image), inputText: kind.takesTextInput ? input : ""))
            }
        }
        if kind.takesTextInput, let missing = tasks.first(where: { $0.inputText.isEmpty }) {
            throw ValidationError("\(path): \(missing.imageURI) has no \(textKey)")
        }
        return tasks
    }
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
