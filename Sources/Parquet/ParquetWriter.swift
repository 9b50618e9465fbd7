// Apache Parquet files, written a row group at a time as rows come: each column chunk one data page (version 1) of
// PLAIN values, its definition and repetition levels in RLE runs, the page compressed with gzip (or not), with
// statistics (null counts; least and greatest values of integer and short string columns, so that readers skip row
// groups); the file metadata (Thrift compact) at the end. Columns are flat (64-bit integers, doubles, UTF-8 strings) or lists of lists
// of doubles (boxes), which is what a job's results need; readers (pyarrow, DuckDB, Spark, Polars) read it as any
// Parquet file.

import CZlib
import Foundation

/// A column of a Parquet file.
public struct ParquetColumn: Sendable {
    public enum Kind: Sendable {
        case int64, double, string
        /// A list of lists of doubles (`[[x1, y1, x2, y2, ...], ...]`), as the standard three-level LIST groups.
        case doubleLists
    }

    public let name: String
    public let kind: Kind
    /// Whether a row may hold no value (null).
    public let optional: Bool

    public init(_ name: String, _ kind: Kind, optional: Bool = true) {
        self.name = name
        self.kind = kind
        self.optional = optional
    }
}

/// One row group's values of one column, a value (or nil) a row.
public enum ParquetValues: Sendable {
    case int64([Int64?])
    case double([Double?])
    case string([String?])
    case doubleLists([[[Double]]?])

    /// The rows these values are for.

    public var count: Int {
        switch self {
        case let .int64(values): values.count
        case let .double(values): values.count
        case let .string(values): values.count
        case let .doubleLists(values): values.count
        }
    }
}

public enum ParquetCompression: Sendable {
    case none, gzip
}

/// Writes a Parquet file to `output`, a piece at a time: the magic, then each row group as `write(rowGroup:)` is
/// given it, then the metadata at `finish()`. Not thread-safe.
public final class ParquetWriter {
    private let columns: [ParquetColumn]
    private let compression: ParquetCompression
    private let output: (Data) throws -> Void
    private var position = 0
    private var rows = 0
    /// Each written row group's metadata: its column chunks, its size and its rows.
    private var rowGroups: [(chunks: [ChunkMetadata], bytes: Int, rows: Int)] = []
    private var finished = false

    private struct ChunkMetadata {
        let column: Int
        let values: Int
        let uncompressed: Int
        let compressed: Int
        let offset: Int
        let statistics: Statistics?
    }

    /// A column chunk's statistics: its nulls, and its least and greatest values (PLAIN bytes) where kept.
    struct Statistics {
        var nulls = 0
        var minimum: [UInt8]?
        var maximum: [UInt8]?
    }

    /// The longest string kept as a least or greatest value: longer ones leave the chunk without them.
    static let longestStatisticString = 64

    private let createdBy: String

    /// - Parameter createdBy: the writer, as the specification asks: "NAME version X.Y.Z".
    public init(
        columns: [ParquetColumn], compression: ParquetCompression = .gzip, createdBy: String,
        output: @escaping (Data) throws -> Void
    ) throws {
        self.columns = columns
        self.compression = compression
        self.createdBy = createdBy
        self.output = output
        try emit(Array("PAR1".utf8))
    }

    /// Writes one row group: `values[i]` is column i's, all of one length.
    public func write(rowGroup values: [ParquetValues]) throws {
        guard values.count == columns.count, let count = values.first?.count, values.allSatisfy({ $0.count == count })
        else { throw ParquetError(description: "a row group needs one value list a column, all of one length") }
        guard count > 0 else { return }
        var chunks: [ChunkMetadata] = []
        var bytes = 0
        for (index, (column, values)) in zip(columns, values).enumerated() {
            let page = try Self.page(column, values)
            let body = compression == .gzip ? try Self.gzip(page.body) : page.body
            guard max(page.body.count, body.count, page.levels) <= Int(Int32.max) else {
                throw ParquetError(
                    description: "column \(column.name) holds over 2 GiB in one row group: write fewer rows")
            }
            var header = ThriftCompactWriter()
            header.i32(1, 0)  // DATA_PAGE
            header.i32(2, Int32(page.body.count))
            header.i32(3, Int32(body.count))
            header.structure(5) { data in
                data.i32(1, Int32(page.levels))
                data.i32(2, 0)  // PLAIN
                data.i32(3, 3)  // RLE
                data.i32(4, 3)
            }
            header.end()
            let offset = position
            try emit(header.bytes)
            try emit(body)
            chunks.append(
                ChunkMetadata(
                    column: index, values: page.levels, uncompressed: header.bytes.count + page.body.count,
                    compressed: header.bytes.count + body.count, offset: offset, statistics: page.statistics))
            bytes += header.bytes.count + page.body.count
        }
        rowGroups.append((chunks, bytes, count))
        rows += count
    }

    /// Writes the file's metadata and closing magic; nothing may be written after.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        var meta = ThriftCompactWriter()
        meta.i32(1, 1)  // version
        meta.list(2, of: .structure, count: 1 + schemaElements.count) { list in
            list.element { root in
                root.string(4, "schema")
                root.i32(5, Int32(columns.count))
            }
            for element in schemaElements { list.element(element) }
        }
        meta.i64(3, Int64(rows))
        meta.list(4, of: .structure, count: rowGroups.count) { list in
            for group in rowGroups {
                list.element { rowGroup in
                    rowGroup.list(1, of: .structure, count: group.chunks.count) { chunks in
                        for chunk in group.chunks {
                            chunks.element { columnChunk in
                                columnChunk.i64(2, Int64(chunk.offset))
                                columnChunk.structure(3) { data in self.columnMetadata(chunk, into: &data) }
                            }
                        }
                    }
                    rowGroup.i64(2, Int64(group.bytes))
                    rowGroup.i64(3, Int64(group.rows))
                }
            }
        }
        meta.string(6, createdBy)
        // Every column's least and greatest values compare as its type orders them (signed integers, strings by
        // unsigned bytes).
        meta.list(7, of: .structure, count: columns.count) { list in
            for _ in columns { list.element { order in order.structure(1) { _ in } } }
        }
        meta.end()
        let length = UInt32(meta.bytes.count)
        try emit(meta.bytes + withUnsafeBytes(of: length.littleEndian, Array.init) + Array("PAR1".utf8))
    }

    private func columnMetadata(_ chunk: ChunkMetadata, into data: inout ThriftCompactWriter) {
        let column = columns[chunk.column]
        data.i32(1, column.kind.physicalType)
        data.list(2, of: .i32, count: 2) { list in
            list.element(Int32(0))  // PLAIN
            list.element(Int32(3))  // RLE
        }
        let path = column.kind == .doubleLists ? [column.name, "list", "element", "list", "element"] : [column.name]
        data.list(3, of: .binary, count: path.count) { list in for name in path { list.element(name) } }
        data.i32(4, compression == .gzip ? 2 : 0)
        data.i64(5, Int64(chunk.values))
        data.i64(6, Int64(chunk.uncompressed))
        data.i64(7, Int64(chunk.compressed))
        data.i64(9, Int64(chunk.offset))
        if let statistics = chunk.statistics {
            data.structure(12) { stats in
                stats.i64(3, Int64(statistics.nulls))
                if let maximum = statistics.maximum { stats.bytes(5, maximum) }
                if let minimum = statistics.minimum { stats.bytes(6, minimum) }
            }
        }
    }

    /// The schema below the root, as `SchemaElement` writers: a leaf a flat column; for a list of lists, the
    /// standard LIST groups (`optional group NAME (LIST) { repeated group list { required group element (LIST) {
    /// repeated group list { required double element } } } }`).
    private var schemaElements: [(inout ThriftCompactWriter) -> Void] {
        var elements: [(inout ThriftCompactWriter) -> Void] = []
        for column in columns {
            let repetition: Int32 = column.optional ? 1 : 0
            switch column.kind {
            case .int64, .double, .string:
                elements.append { element in
                    element.i32(1, column.kind.physicalType)
                    element.i32(3, repetition)
                    element.string(4, column.name)
                    if column.kind == .string {
                        element.i32(6, 0)  // UTF8
                        element.structure(10) { logical in logical.structure(1) { _ in } }  // STRING
                    }
                }
            case .doubleLists:
                func list(_ name: String, _ repetition: Int32) -> (inout ThriftCompactWriter) -> Void {
                    { element in
                        element.i32(3, repetition)
                        element.string(4, name)
                        element.i32(5, 1)
                        element.i32(6, 3)  // LIST
                        element.structure(10) { logical in logical.structure(3) { _ in } }  // LIST
                    }
                }
                func repeated(_ element: inout ThriftCompactWriter) {
                    element.i32(3, 2)  // REPEATED
                    element.string(4, "list")
                    element.i32(5, 1)
                }
                elements += [list(column.name, repetition), repeated, list("element", 0), repeated]
                elements.append { element in
                    element.i32(1, 5)  // DOUBLE
                    element.i32(3, 0)  // REQUIRED
                    element.string(4, "element")
                }
            }
        }
        return elements
    }

    /// A column chunk's page body before compression (repetition levels, definition levels, then the values that
    /// are present, PLAIN), and how many level entries it holds.
    private static func page(_ column: ParquetColumn, _ values: ParquetValues) throws -> (
        body: [UInt8], levels: Int, statistics: Statistics?
    ) {
        var definitions: [UInt8] = [], repetitions: [UInt8] = [], plain: [UInt8] = []
        var statistics = Statistics()
        func present<T>(_ value: T?) throws -> T? {
            if value == nil && !column.optional {
                throw ParquetError(description: "no value for the required column \(column.name)")
            }
            if column.optional { definitions.append(value == nil ? 0 : 1) }
            if value == nil { statistics.nulls += 1 }
            return value
        }
        switch (column.kind, values) {
        case let (.int64, .int64(values)):
            var least = Int64.max, greatest = Int64.min
            for value in values {
                if let value = try present(value) {
                    append(value.littleEndian, to: &plain)
                    least = min(least, value)
                    greatest = max(greatest, value)
                }
            }
            if least <= greatest {
                statistics.minimum = withUnsafeBytes(of: least.littleEndian, Array.init)
                statistics.maximum = withUnsafeBytes(of: greatest.littleEndian, Array.init)
            }
        case let (.double, .double(values)):
            for value in values {
                if let value = try present(value) { append(value.bitPattern.littleEndian, to: &plain) }
            }
        case let (.string, .string(values)):
            var least: String.UTF8View?, greatest: String.UTF8View?
            var kept = true
            for value in values {
                if let value = try present(value) {
                    append(UInt32(value.utf8.count).littleEndian, to: &plain)
                    plain.append(contentsOf: value.utf8)
                    guard kept else { continue }
                    guard value.utf8.count <= longestStatisticString else {
                        kept = false
                        continue
                    }
                    if least.map({ value.utf8.lexicographicallyPrecedes($0) }) ?? true { least = value.utf8 }
                    if greatest.map({ $0.lexicographicallyPrecedes(value.utf8) }) ?? true { greatest = value.utf8 }
                }
            }
            if kept, let least, let greatest {
                statistics.minimum = Array(least)
                statistics.maximum = Array(greatest)
            }
        case let (.doubleLists, .doubleLists(values)):
            // Definition: 0 null list, 1 empty list, 2 empty inner list, 3 a value (the optional group adds one
            // level only when the column is optional). Repetition: 0 a new row, 1 a new inner list, 2 a new value.
            let base: UInt8 = column.optional ? 1 : 0
            for value in values {
                guard let lists = value else {
                    guard column.optional else {
                        throw ParquetError(description: "no value for the required column \(column.name)")
                    }
                    definitions.append(0)
                    repetitions.append(0)
                    continue
                }
                if lists.isEmpty {
                    definitions.append(base)
                    repetitions.append(0)
                }
                for (outer, list) in lists.enumerated() {
                    if list.isEmpty {
                        definitions.append(base + 1)
                        repetitions.append(outer == 0 ? 0 : 1)
                    }
                    for (inner, number) in list.enumerated() {
                        definitions.append(base + 2)
                        repetitions.append(inner > 0 ? 2 : outer > 0 ? 1 : 0)
                        append(number.bitPattern.littleEndian, to: &plain)
                    }
                }
            }
        default:
            throw ParquetError(description: "the values given for \(column.name) are not of its kind")
        }
        var body: [UInt8] = []
        if column.kind == .doubleLists { body += levels(repetitions) }
        if column.kind == .doubleLists || column.optional { body += levels(definitions) }
        body.append(contentsOf: plain)
        let entries = column.kind == .doubleLists || column.optional ? definitions.count : values.count
        // A list column's null count would have to say which level it counts: it has none.
        return (body, entries, column.kind == .doubleLists ? nil : statistics)
    }

    /// Levels in the RLE/bit-packed hybrid encoding, as RLE runs only, after their 4-byte length (data page v1). A
    /// run's value takes one byte whatever the bit width (the levels here are at most 3: 2 bits).
    private static func levels(_ levels: [UInt8]) -> [UInt8] {
        var runs: [UInt8] = []
        var start = 0
        while start < levels.count {
            var end = start + 1
            while end < levels.count && levels[end] == levels[start] { end += 1 }
            var header = UInt64(end - start) << 1
            while header >= 0x80 {
                runs.append(UInt8(header & 0x7F) | 0x80)
                header >>= 7
            }
            runs.append(UInt8(header))
            runs.append(levels[start])
            start = end
        }
        var out: [UInt8] = []
        out.reserveCapacity(4 + runs.count)
        append(UInt32(runs.count).littleEndian, to: &out)
        out.append(contentsOf: runs)
        return out
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value) { bytes += $0 }
    }

    /// `bytes` in the gzip format, as Parquet's GZIP codec holds a page.
    private static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard infmllm_deflate_gzip_init(&stream, 6) == Z_OK else {
            throw ParquetError(description: "zlib could not start compressing")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 32)
        let status: Int32 = bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw ParquetError(description: "zlib could not compress a page") }
        output.removeSubrange(Int(stream.total_out)...)
        return output
    }

    private func emit(_ bytes: [UInt8]) throws {
        try output(Data(bytes))
        position += bytes.count
    }
}

extension ParquetColumn.Kind {
    /// Parquet's physical type: INT64 2, DOUBLE 5, BYTE_ARRAY 6 (a list's leaves are doubles).
    fileprivate var physicalType: Int32 {
        switch self {
        case .int64: 2
        case .double, .doubleLists: 5
        case .string: 6
        }
    }
}
