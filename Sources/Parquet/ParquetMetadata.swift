// The parts of Parquet's Thrift metadata (parquet.thrift) a reader of flat columns needs: the schema, the row groups
// and their column chunks, and page headers. Fields this reader does not use are skipped.

/// Parquet's physical types.
enum PhysicalType: Int32 {
    case boolean = 0, int32, int64, int96, float, double, byteArray, fixedLengthByteArray
}

/// Parquet's page and level encodings.
enum Encoding: Int32 {
    case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5, deltaLengthByteArray = 6
    case deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9
}

/// Compression codecs, by their numbers in the file.
enum Codec: Int32 {
    case uncompressed = 0, snappy, gzip, lzo, brotli, lz4, zstd, lz4Raw

    var name: String {
        switch self {
        case .uncompressed: "UNCOMPRESSED"
        case .snappy: "SNAPPY"
        case .gzip: "GZIP"
        case .lzo: "LZO"
        case .brotli: "BROTLI"
        case .lz4: "LZ4"
        case .zstd: "ZSTD"
        case .lz4Raw: "LZ4_RAW"
        }
    }
}

/// One node of the schema tree, as the file lists them (depth first).
struct SchemaElement {
    var type: PhysicalType?
    var typeLength = 0
    /// 0 required, 1 optional, 2 repeated.
    var repetition: Int32 = 0
    var name = ""
    var children = 0
    var convertedType: Int32?
    var scale = 0
    /// The logical type's field id in its union (1 STRING, 4 ENUM, 5 DECIMAL, 6 DATE, 10 INTEGER, 12 JSON, 14 UUID,
    /// 15 FLOAT16, ...), and for INTEGER whether it is signed.
    var logicalType: Int?
    var unsigned = false

    init(_ reader: inout ThriftCompactReader) throws {
        try reader.structure { reader, id, type in
            switch (id, type) {
            case (1, .i32):
                let raw = try reader.i32()
                guard let physical = PhysicalType(rawValue: raw) else {
                    throw ThriftCompactReader.Error.malformed("physical type \(raw)")
                }
                self.type = physical
            case (2, .i32): typeLength = try reader.count()
            case (3, .i32): repetition = try reader.i32()
            case (4, .binary): name = try reader.string()
            case (5, .i32): children = try reader.count()
            case (6, .i32): convertedType = try reader.i32()
            case (7, .i32): scale = Int(try reader.i32())
            case (10, .structure): try readLogicalType(&reader)
            default: try reader.skip(type)
            }
        }
    }

    private mutating func readLogicalType(_ reader: inout ThriftCompactReader) throws {
        try reader.structure { reader, id, type in
            logicalType = id
            switch (id, type) {
            case (5, .structure):
                try reader.structure { reader, field, type in
                    if field == 1, type == .i32 { scale = Int(try reader.i32()) } else { try reader.skip(type) }
                }
            case (10, .structure):
                try reader.structure { reader, field, type in
                    if field == 2, type == .boolTrue || type == .boolFalse {
                        unsigned = !(try reader.bool(type))
                    } else {
                        try reader.skip(type)
                    }
                }
            default: try reader.skip(type)
            }
        }
    }
}

/// Where one column's values of one row group lie.
struct ColumnChunk {
    var codec: Codec = .uncompressed
    var values = 0
    /// The first page (the dictionary page's, when there is one) and the bytes of all pages.
    var start = 0
    var compressedSize = 0
    /// Set when the chunk lies in another file, which this reader does not follow.
    var externalFile: String?

    init(_ reader: inout ThriftCompactReader) throws {
        var dataPage: Int64 = -1
        var dictionaryPage: Int64 = -1
        try reader.structure { reader, id, type in
            switch (id, type) {
            case (1, .binary): externalFile = try reader.string()
            case (3, .structure):
                try reader.structure { reader, id, type in
                    switch (id, type) {
                    case (4, .i32):
                        let raw = try reader.i32()
                        guard let codec = Codec(rawValue: raw) else {
                            throw ThriftCompactReader.Error.malformed("compression codec \(raw)")
                        }
                        self.codec = codec
                    case (5, .i64): values = Int(clamping: try reader.i64())
                    case (7, .i64): compressedSize = Int(clamping: try reader.i64())
                    case (9, .i64): dataPage = try reader.i64()
                    case (11, .i64): dictionaryPage = try reader.i64()
                    default: try reader.skip(type)
                    }
                }
            default: try reader.skip(type)
            }
        }
        // Some writers put 0 (not absent) for a missing dictionary page; a dictionary page comes before the data.
        start = Int(clamping: dictionaryPage > 0 && dictionaryPage < dataPage ? dictionaryPage : dataPage)
    }
}

struct RowGroup {
    var rows = 0
    var chunks: [ColumnChunk] = []

    init(_ reader: inout ThriftCompactReader) throws {
        try reader.structure { reader, id, type in
            switch (id, type) {
            case (1, .list):
                try reader.list { reader, _ in chunks.append(try ColumnChunk(&reader)) }
            case (3, .i64): rows = Int(clamping: try reader.i64())
            default: try reader.skip(type)
            }
        }
    }
}

/// The footer: the schema and the row groups.
struct FileMetadata {
    var schema: [SchemaElement] = []
    var rows = 0
    var rowGroups: [RowGroup] = []

    init(_ bytes: [UInt8]) throws {
        var reader = ThriftCompactReader(bytes)
        try reader.structure { reader, id, type in
            switch (id, type) {
            case (2, .list): try reader.list { reader, _ in schema.append(try SchemaElement(&reader)) }
            case (3, .i64): rows = Int(clamping: try reader.i64())
            case (4, .list): try reader.list { reader, _ in rowGroups.append(try RowGroup(&reader)) }
            default: try reader.skip(type)
            }
        }
    }
}

/// A page's header: its kind, sizes and value count, and for data pages version 2 the levels' byte lengths.
struct PageHeader {
    enum Kind: Int32 {
        case data = 0, index = 1, dictionary = 2, dataV2 = 3
    }

    var kind: Kind?
    var uncompressedSize = 0
    var compressedSize = 0
    var values = 0
    var encoding: Encoding?
    var encodingNumber: Int32 = 0
    var definitionEncoding: Int32 = Encoding.rle.rawValue
    /// Version 2 only: the levels' bytes (never compressed) and whether the values are compressed.
    var definitionBytes = 0
    var repetitionBytes = 0
    var compressed = true
    /// The header's own bytes.
    var headerSize = 0

    init(_ bytes: [UInt8]) throws {
        var reader = ThriftCompactReader(bytes)
        try reader.structure { reader, id, type in
            switch (id, type) {
            case (1, .i32): kind = Kind(rawValue: try reader.i32())
            case (2, .i32): uncompressedSize = try reader.count()
            case (3, .i32): compressedSize = try reader.count()
            case (5, .structure), (7, .structure), (8, .structure):
                let version2 = id == 8
                try reader.structure { reader, field, type in
                    switch (field, type) {
                    case (1, .i32): values = try reader.count()
                    case (2, .i32) where !version2, (4, .i32) where version2: try setEncoding(reader.i32())
                    case (3, .i32) where !version2: definitionEncoding = try reader.i32()
                    case (5, .i32) where version2: definitionBytes = try reader.count()
                    case (6, .i32) where version2: repetitionBytes = try reader.count()
                    case (7, .boolTrue) where version2, (7, .boolFalse) where version2:
                        compressed = try reader.bool(type)
                    default: try reader.skip(type)
                    }
                }
            default: try reader.skip(type)
            }
        }
        headerSize = reader.position
    }

    private mutating func setEncoding(_ raw: Int32) throws {
        encodingNumber = raw
        encoding = Encoding(rawValue: raw)
    }
}
