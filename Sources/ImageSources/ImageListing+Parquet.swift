// Parquet manifests: the metadata files of LAION, DataComp, COYO and Hugging Face datasets (a URL column beside
// captions, sizes and scores), or an earlier `export --format parquet`. A row is a task: its image column (`image`,
// or the one --image-column names) holds a path or URL, its "question"/"expression" (or "text", or the one
// --text-column names) column the text where the task takes one, and its other flat columns become the task's
// fields (all, or those --fields names), as a JSONL line's do. Nested columns (lists, structs, maps) are not read;
// the report names them. The file may be local, or an http(s):// or s3:// URL read by range requests (`RemoteFile`);
// relative image paths in it are taken from its folder, or its URL's.

import Foundation
import Parquet

extension ImageListing {
    /// Whether `path` names a Parquet file by its extension (a URL's before its query).
    static func isParquet(_ path: String) -> Bool {
        var lower = path.lowercased()
        if ImageLocation.isURL(lower), let end = lower.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            lower = String(lower[..<end])
        }
        return lower.hasSuffix(".parquet") || lower.hasSuffix(".parq") || lower.hasSuffix(".pq")
    }

    /// Which of a Parquet manifest's columns are read, and for what.
    struct ParquetColumns {
        let reader: ParquetReader
        let image: Int
        let text: Int?
        /// The other flat columns: each row's fields.
        let fields: [Int]
        /// The columns left out, each with what it is ("tags (a list)").
        let nested: [String]
    }

    /// Opens a Parquet manifest and finds its columns: refused when it cannot be read as Parquet, has no image
    /// column, or its image column does not hold strings.
    static func parquetColumns(_ path: String, request: Request, files: ImageReader) throws -> ParquetColumns {
        let reader: ParquetReader
        do {
            reader = try ImageLocation.isURL(path) ? files.parquet(path) : ParquetReader(path: path)
        } catch let error as ParquetError {
            throw ImageSourceError(source: path, reason: error.description)
        }
        let names = reader.fields.map(\.name)
        guard let image = names.firstIndex(of: request.imageColumn) else {
            let listed = names.prefix(20).joined(separator: ", ") + (names.count > 20 ? ", ..." : "")
            throw ImageSourceError(
                source: path,
                reason: "no \"\(request.imageColumn)\" column (it has \(listed)): name the column of image paths or "
                    + "URLs with --image-column")
        }
        let field = reader.fields[image]
        guard field.nested == nil, field.isText else {
            let what =
                field.nested.map {
                    "is \($0)"
                        + ($0 == "a struct"
                            ? " (images stored in the file, as Hugging Face "
                                + "datasets keep them, cannot be enqueued: only paths and URLs)" : "")
                }
                ?? "does not hold strings"
            throw ImageSourceError(source: path, reason: "the image column \"\(field.name)\" \(what)")
        }
        var text: Int?
        if request.takesText {
            text = request.textColumns.lazy.compactMap { names.firstIndex(of: $0) }.first
            if let wanted = request.textColumn, text == nil {
                throw ImageSourceError(source: path, reason: "no \"\(wanted)\" column")
            }
            if let column = text, reader.fields[column].nested != nil {
                throw ImageSourceError(
                    source: path, reason: "the \(names[column]) column is \(reader.fields[column].nested!)")
            }
        }
        if let missing = request.fields?.first(where: { !names.contains($0) }) {
            throw ImageSourceError(source: path, reason: "no \"\(missing)\" column (--fields)")
        }
        let flat = reader.fields.indices.filter {
            reader.fields[$0].nested == nil && $0 != image && $0 != text && request.keeps(names[$0])
        }
        let nested = reader.fields.filter { request.keeps($0.name) }.compactMap { field in
            field.nested.map { "\(field.name) (\($0))" }
        }
        return ParquetColumns(reader: reader, image: image, text: text, fields: flat, nested: nested)
    }

    /// Lists a Parquet manifest's rows, a row group's pages at a time. A bad row (no image, a null or empty text
    /// where the task needs one, values over the limits) is refused with its row number (from 1) and left out.
    static func read(
        parquet path: String, request: Request, files: ImageReader, report: inout Report,
        _ body: (ListedImage) throws -> Void
    ) throws {
        let columns = try parquetColumns(path, request: request, files: files)
        // Once each, however many of a pattern's parts have it.
        report.unreadColumns += columns.nested.filter { !report.unreadColumns.contains($0) }
        let base = folder(of: path)
        let wanted = [columns.image] + (columns.text.map { [$0] } ?? []) + columns.fields
        let fieldNames = columns.fields.map { columns.reader.fields[$0].name }
        var number = 0
        do {
            try columns.reader.forEachRow(columns: wanted) { values in
                number += 1
                guard case let .string(image)? = values[0] else {
                    report.refuse(line: number, values[0] == nil ? "no image (null)" : "no image")
                    return
                }
                var input = request.sharedText
                if columns.text != nil, case let .string(text)? = values[1] { input = text }
                var metadata: [String: Any] = [:]
                for (name, value) in zip(fieldNames, values.suffix(fieldNames.count)) {
                    metadata[name] = json(value)
                }
                let result = listedImage(
                    image: image, input: input, metadata: metadata, request: request, base: base)
                switch result {
                case .success(let task): try body(task)
                case .failure(let error): report.refuse(line: number, error.reason)
                }
            }
        } catch let error as ParquetError {
            throw ImageSourceError(source: path, reason: "\(error.description) (after \(number) rows)")
        }
    }

    /// A Parquet value as a JSON field: numbers, strings, booleans, null (also for NaN and infinities, which JSON
    /// lacks), and bytes as base64.
    static func json(_ value: ParquetValue?) -> Any {
        switch value {
        case nil: NSNull()
        case let .bool(flag)?: NSNumber(value: flag)
        case let .int(integer)?: NSNumber(value: integer)
        case let .double(number)?: number.isFinite ? NSNumber(value: number) : NSNull()
        case let .string(text)?: text
        case let .bytes(bytes)?: Data(bytes).base64EncodedString()
        }
    }
}
