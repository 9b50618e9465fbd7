// Reads the flat columns of an Apache Parquet file, a row at a time: the footer (Thrift compact) for the schema and
// row groups, then, for each row group, one page at a time of each column asked for, so that memory holds a page a
// column (and its dictionary), not the file. Data pages of versions 1 and 2; PLAIN, dictionary, RLE, DELTA_* and
// BYTE_STREAM_SPLIT values; UNCOMPRESSED, SNAPPY, GZIP, ZSTD and LZ4_RAW pages. Nested columns (lists, structs, maps) are
// described but not read. A damaged file is a `ParquetError` naming the row group, the column and the reason (the
// caller names the file).

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A top-level field of a Parquet file's schema.
public struct ParquetField: Sendable {
    public let name: String
    /// What the field is when its values are not one value a row ("a list", "a struct", "a map", "a repeated
    /// value"): such fields are not read. Nil for a flat column.
    public let nested: String?
    /// Whether its values are strings (STRING, ENUM or JSON byte arrays).
    public let isText: Bool
}

/// Where a Parquet file's bytes come from: a local file, or a remote one read by range requests.
public protocol ParquetByteSource: AnyObject {
    /// The file's size in bytes.
    var size: Int { get }
    /// How many bytes a read should ask for at least, when that many are wanted later (a page's header is read with
    /// its page): a remote file's range requests cost a round trip each.
    var readSize: Int { get }
    /// `count` bytes at `offset`, all of them, or an error with the reason.
    func read(at offset: Int, count: Int) throws -> [UInt8]
}

public final class ParquetReader {
    /// The file's top-level fields, in order.
    public let fields: [ParquetField]
    public let rows: Int

    private let file: any ParquetByteSource
    private let metadata: FileMetadata
    private let leaves: [Leaf]
    /// Where the pages end: the footer's start.
    private let dataEnd: Int

    /// The most bytes of footer read: more is damage (real footers take kilobytes to a few megabytes).
    static let largestFooter = 256 << 20

    /// Opens the file at `path` and reads its footer: refused when it is not a Parquet file or its metadata is
    /// damaged.
    public convenience init(path: String) throws {
        try self.init(source: try ReadOnlyFile(path: path))
    }

    /// Reads the footer of the file `source` reads.
    public init(source: any ParquetByteSource) throws {
        file = source
        guard file.size >= 12, try file.read(at: 0, count: 4) == Array("PAR1".utf8) else {
            throw ParquetError(description: "not a Parquet file (no PAR1 at its start)")
        }
        let tail = try file.read(at: file.size - 8, count: 8)
        guard Array(tail[4...]) == Array("PAR1".utf8) else {
            throw ParquetError(description: "not a Parquet file, or cut short (no PAR1 at its end)")
        }
        let length = Int(tail[0]) | Int(tail[1]) << 8 | Int(tail[2]) << 16 | Int(tail[3]) << 24
        guard length <= file.size - 12, length <= Self.largestFooter else {
            throw ParquetError(description: "a footer of \(length) bytes in a file of \(file.size)")
        }
        dataEnd = file.size - 8 - length
        do {
            metadata = try FileMetadata(try file.read(at: dataEnd, count: length))
        } catch let error as ThriftCompactReader.Error {
            throw ParquetError(description: "damaged metadata (\(error))")
        }
        let leafCount: Int
        (fields, leaves, leafCount) = try Self.fields(of: metadata.schema)
        for (index, group) in metadata.rowGroups.enumerated() {
            guard group.chunks.count == leafCount, group.rows >= 0 else {
                throw ParquetError(
                    description: "row group \(index + 1) has \(group.chunks.count) columns where the schema has "
                        + "\(leafCount)")
            }
        }
        rows = metadata.rowGroups.reduce(0) { $0 &+ $1.rows }
    }

    /// Calls `body` with each row's values of `columns` (indices into `fields`, all flat), nil for a null, row
    /// groups in order.
    public func forEachRow(columns: [Int], _ body: ([ParquetValue?]) throws -> Void) throws {
        for column in columns where fields[column].nested != nil {
            throw ParquetError(description: "column \(fields[column].name) is \(fields[column].nested!)")
        }
        for (groupIndex, group) in metadata.rowGroups.enumerated() where group.rows > 0 {
            var cursors: [ColumnCursor] = []
            var current = columns.first ?? 0
            func context(_ error: ParquetError) -> ParquetError {
                ParquetError(
                    description: "row group \(groupIndex + 1), column \(fields[current].name): "
                        + error.description)
            }
            do {
                for column in columns {
                    current = column
                    let leaf = leaves[column]
                    cursors.append(
                        try ColumnCursor(
                            file: file, chunk: group.chunks[leaf.index], meaning: leaf.meaning!,
                            optional: leaf.optional, rows: group.rows, dataEnd: dataEnd))
                }
            } catch let error as ParquetError {
                throw context(error)
            }
            var row = [ParquetValue?](repeating: nil, count: columns.count)
            for _ in 0..<group.rows {
                for index in cursors.indices {
                    do {
                        row[index] = try cursors[index].next()
                    } catch let error as ParquetError {
                        current = columns[index]
                        throw context(error)
                    }
                }
                try body(row)
            }
        }
    }

    /// A top-level field's place among the leaf columns (its column chunks' index in a row group), and when it is
    /// flat, its values' meaning and whether they may be null (not REQUIRED).
    struct Leaf {
        let index: Int
        let meaning: ValueMeaning?
        let optional: Bool
    }

    /// The top-level fields of a flattened schema, each with its first leaf and, when flat, its values' meaning.
    /// Also the number of leaf columns, which every row group has a chunk for.
    static func fields(of schema: [SchemaElement]) throws -> ([ParquetField], [Leaf], Int) {
        guard let root = schema.first else { throw ParquetError(description: "an empty schema") }
        var fields: [ParquetField] = []
        var leaves: [Leaf] = []
        var index = 1
        var leaf = 0
        for _ in 0..<root.children {
            guard index < schema.count else { throw ParquetError(description: "a schema cut short") }
            let element = schema[index]
            let end = subtreeEnd(schema, from: index)
            guard end <= schema.count else { throw ParquetError(description: "a schema cut short") }
            let leafCount = (index..<end).filter { schema[$0].children == 0 }.count
            if element.children == 0 {
                guard let physical = element.type else {
                    throw ParquetError(description: "column \(element.name) has no type")
                }
                let meaning = ValueMeaning(element, physical: physical)
                let repeated = element.repetition == 2
                fields.append(
                    ParquetField(
                        name: element.name, nested: repeated ? "a repeated value" : nil,
                        isText: meaning.isText && (physical == .byteArray || physical == .fixedLengthByteArray)))
                leaves.append(Leaf(index: leaf, meaning: repeated ? nil : meaning, optional: element.repetition != 0))
            } else {
                let kind =
                    element.convertedType == 3 || element.logicalType == 3
                    ? "a list"
                    : element.convertedType == 1 || element.convertedType == 2 || element.logicalType == 2
                        ? "a map" : "a struct"
                fields.append(ParquetField(name: element.name, nested: kind, isText: false))
                leaves.append(Leaf(index: leaf, meaning: nil, optional: true))
            }
            leaf += leafCount
            index = end
        }
        return (fields, leaves, leaf)
    }

    /// The index after the subtree rooted at `start` (depth first), or past the end when the schema is cut short.
    static func subtreeEnd(_ schema: [SchemaElement], from start: Int) -> Int {
        var index = start
        var open = 1
        while open > 0 {
            guard index < schema.count else { return schema.count + 1 }
            open += schema[index].children - 1
            index += 1
        }
        return index
    }
}

/// A local file read at offsets (pread), shared by the column cursors. A read costs a system call, not a round trip,
/// so each reads what is asked and no more.
final class ReadOnlyFile: ParquetByteSource {
    let size: Int
    let readSize = 0
    private let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ParquetError(description: "cannot open it (\(String(cString: strerror(errno))))")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw ParquetError(description: "not a regular file (a Parquet file is read from its end)")
        }
        size = Int(status.st_size)
    }

    deinit { close(descriptor) }

    /// `count` bytes at `offset`, all of them.
    func read(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, count <= size - offset else {
            throw ParquetError(description: "\(count) bytes at \(offset) lie past the file's end (\(size) bytes)")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < count {
                let got = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    throw ParquetError(
                        description: "reading \(count) bytes at \(offset): "
                            + (got == 0 ? "the file ended (was it cut short?)" : String(cString: strerror(errno))))
                }
                done += got
            }
        }
        return bytes
    }
}
