// One flat column's values in one row group, a page at a time: reads each page header and page, decompresses it,
// decodes its definition levels and values (through the dictionary page where there is one), and hands out a value
// (or nil) a row.

struct ColumnCursor {
    private let file: any ParquetByteSource
    /// The bytes last read from `file`, and where they start: pages are read through it.
    private var window: [UInt8] = []
    private var windowStart = 0
    private let chunk: ColumnChunk
    private let meaning: ValueMeaning
    private let optional: Bool
    /// The chunk's bytes still to read: `position..<end`.
    private var position: Int
    private let end: Int
    /// Values (nulls included) the pages read so far declared, and how many the chunk must hold.
    private var declared = 0
    private let expected: Int
    private var dictionary: [ParquetValue]?
    /// The current page: its non-null values, and per row whether it has one (nil: every row has).
    private var values: [ParquetValue] = []
    private var defined: [Bool]?
    private var rowsInPage = 0
    private var nextRow = 0
    private var nextValue = 0

    /// The largest page header read (headers hold statistics, which may include long strings).
    static let largestHeader = 16 << 20
    /// The most values (nulls included) one page may declare. Writers cut pages at about 1 MiB or 20,000 rows; a
    /// page of nulls takes a few bytes whatever its count, so the count alone bounds the memory it decodes into.
    static let mostPageValues = 1 << 24

    init(
        file: any ParquetByteSource, chunk: ColumnChunk, meaning: ValueMeaning, optional: Bool, rows: Int, dataEnd: Int
    ) throws {
        if let external = chunk.externalFile {
            throw ParquetError(description: "its values are in another file (\(external)), which is not read")
        }
        guard chunk.values == rows else {
            throw ParquetError(description: "\(chunk.values) values for the row group's \(rows) rows")
        }
        guard chunk.start >= 4, chunk.compressedSize >= 0, chunk.compressedSize <= dataEnd - chunk.start else {
            throw ParquetError(
                description: "pages at \(chunk.start) (\(chunk.compressedSize) bytes) outside the file's data")
        }
        self.file = file
        self.chunk = chunk
        self.meaning = meaning
        self.optional = optional
        position = chunk.start
        end = chunk.start + chunk.compressedSize
        expected = rows
    }

    /// The next row's value, nil for a null.
    mutating func next() throws -> ParquetValue? {
        while nextRow == rowsInPage { try readPage() }
        defer { nextRow += 1 }
        if let defined, !defined[nextRow] { return nil }
        defer { nextValue += 1 }
        return values[nextValue]
    }

    /// Reads pages up to and including the next data page.
    private mutating func readPage() throws {
        while true {
            guard position < end else {
                throw ParquetError(description: "the pages end after \(declared) of \(expected) values")
            }
            let header = try readHeader()
            position += header.headerSize
            guard header.compressedSize <= end - position else {
                throw ParquetError(description: "a page of \(header.compressedSize) bytes past the column's end")
            }
            let stored = try read(at: position, count: header.compressedSize)
            position += header.compressedSize
            switch header.kind {
            case .dictionary:
                guard dictionary == nil, declared == 0 else {
                    throw ParquetError(description: "a dictionary page after the first page")
                }
                let bytes = try PageDecompression.decompress(
                    stored, codec: chunk.codec, size: header.uncompressedSize)
                var input = PageBytes(bytes)
                guard header.encoding == .plain || header.encoding == .plainDictionary else {
                    throw ParquetError(description: "a dictionary in encoding \(header.encodingNumber)")
                }
                dictionary = try plain(&input, count: header.values)
            case .data, .dataV2:
                guard header.values <= Self.mostPageValues else {
                    throw ParquetError(description: "a page of \(header.values) values")
                }
                guard header.values <= expected - declared else {
                    throw ParquetError(description: "pages of more values than the row group's \(expected) rows")
                }
                try decodeDataPage(header, stored)
                declared += header.values
                return
            case .index, nil:
                continue
            }
        }
    }

    /// `count` bytes of the chunk at `offset`, from the window when it holds them; otherwise the window moves there
    /// and takes at least the source's `readSize` bytes (up to the chunk's end).
    private mutating func read(at offset: Int, count: Int) throws -> [UInt8] {
        if offset < windowStart || offset + count > windowStart + window.count {
            window = try file.read(at: offset, count: min(max(count, file.readSize), end - offset))
            windowStart = offset
        }
        return Array(window[(offset - windowStart)..<(offset - windowStart + count)])
    }

    /// The next page header: read in growing prefixes, since its length is known only once it is decoded.
    private mutating func readHeader() throws -> PageHeader {
        var length = min(1024, end - position)
        while true {
            do {
                return try PageHeader(try read(at: position, count: length))
            } catch ThriftCompactReader.Error.truncated where length < min(end - position, Self.largestHeader) {
                length = min(length * 8, end - position, Self.largestHeader)
            } catch let error as ThriftCompactReader.Error {
                throw ParquetError(description: "a damaged page header (\(error))")
            }
        }
    }

    private mutating func decodeDataPage(_ header: PageHeader, _ stored: [UInt8]) throws {
        let rows = header.values
        var bytes: [UInt8]
        var levels: PageBytes
        if header.kind == .dataV2 {
            // Levels first, never compressed; then the values, compressed unless the header says not.
            let levelBytes = header.repetitionBytes + header.definitionBytes
            guard header.repetitionBytes == 0 else {
                throw ParquetError(description: "repetition levels in a flat column")
            }
            guard levelBytes <= stored.count else { throw ParquetError(description: "levels past the page's end") }
            let body = Array(stored[levelBytes...])
            let size = header.uncompressedSize - levelBytes
            guard size >= 0 else { throw ParquetError(description: "a page smaller than its levels") }
            let values =
                header.compressed
                ? try PageDecompression.decompress(body, codec: chunk.codec, size: size)
                : try PageDecompression.decompress(body, codec: .uncompressed, size: size)
            bytes = Array(stored[..<levelBytes]) + values
            levels = PageBytes(bytes, from: 0, to: levelBytes)
        } else {
            bytes = try PageDecompression.decompress(stored, codec: chunk.codec, size: header.uncompressedSize)
            levels = PageBytes(bytes)
            if optional {
                guard header.definitionEncoding == Encoding.rle.rawValue else {
                    throw ParquetError(description: "definition levels in encoding \(header.definitionEncoding)")
                }
                let length = Int(try levels.littleEndian(4))
                guard length <= levels.remaining else { throw ParquetError(description: "levels past the page's end") }
                levels = PageBytes(bytes, from: 4, to: 4 + length)
            } else {
                levels = PageBytes(bytes, from: 0, to: 0)
            }
        }
        var present = rows
        if optional {
            let levelValues = try ValueDecoding.hybrid(&levels, bitWidth: 1, count: rows)
            defined = levelValues.map { $0 != 0 }
            present = levelValues.reduce(0) { $0 + Int($1) }
        } else {
            defined = nil
        }
        var input = PageBytes(bytes, from: levels.end)
        values = try decodeValues(&input, header: header, count: present)
        rowsInPage = rows
        nextRow = 0
        nextValue = 0
    }

    private func decodeValues(_ input: inout PageBytes, header: PageHeader, count: Int) throws -> [ParquetValue] {
        guard let encoding = header.encoding else {
            throw ParquetError(description: "values in encoding \(header.encodingNumber), which this reader lacks")
        }
        switch encoding {
        case .plain:
            return try plain(&input, count: count)
        case .plainDictionary, .rleDictionary:
            guard let dictionary else { throw ParquetError(description: "dictionary indices without a dictionary") }
            let width = Int(try input.byte())
            return try ValueDecoding.hybrid(&input, bitWidth: width, count: count).map { index in
                guard Int(index) < dictionary.count else {
                    throw ParquetError(description: "index \(index) in a dictionary of \(dictionary.count)")
                }
                return dictionary[Int(index)]
            }
        case .rle where meaning.physical == .boolean:
            let length = Int(try input.littleEndian(4))
            guard length <= input.remaining else { throw ParquetError(description: "a page ends early") }
            var run = PageBytes(input.bytes, from: input.position, to: input.position + length)
            return try ValueDecoding.hybrid(&run, bitWidth: 1, count: count).map { .bool($0 != 0) }
        case .deltaBinaryPacked where meaning.physical == .int32 || meaning.physical == .int64:
            let integers = try ValueDecoding.deltaBinaryPacked(&input, limit: count)
            guard integers.count == count else { throw ParquetError(description: "\(integers.count) of \(count)") }
            return integers.map {
                meaning.physical == .int32 ? meaning.int32(Int32(truncatingIfNeeded: $0)) : meaning.int64($0)
            }
        case .deltaLengthByteArray where meaning.physical == .byteArray:
            return try ValueDecoding.deltaLengthByteArrays(&input, count: count).map { meaning.bytes($0) }
        case .deltaByteArray where meaning.physical == .byteArray || meaning.physical == .fixedLengthByteArray:
            return try ValueDecoding.deltaByteArrays(&input, count: count).map { meaning.bytes($0) }
        case .byteStreamSplit:
            let width =
                switch meaning.physical {
                case .float, .int32: 4
                case .double, .int64: 8
                case .fixedLengthByteArray: meaning.typeLength
                default: 0
                }
            guard width > 0 else { throw ParquetError(description: "BYTE_STREAM_SPLIT values of this type") }
            let split = try ValueDecoding.byteStreamSplit(&input, width: width, count: count)
            return try split.map { bytes in
                var whole = PageBytes(bytes)
                return try plain(&whole, count: 1)[0]
            }
        default:
            throw ParquetError(description: "values in encoding \(encoding) for this column's type")
        }
    }

    /// `count` PLAIN values.
    private func plain(_ input: inout PageBytes, count: Int) throws -> [ParquetValue] {
        // The least bytes a value takes, so that a damaged count cannot ask for more values than the bytes hold.
        let least =
            switch meaning.physical {
            case .boolean: 0
            case .int32, .float, .byteArray: 4
            case .int64, .double: 8
            case .int96: 12
            case .fixedLengthByteArray: max(meaning.typeLength, 1)
            }
        guard count >= 0, least == 0 || count <= input.remaining / least else {
            throw ParquetError(description: "\(count) values in \(input.remaining) bytes")
        }
        switch meaning.physical {
        case .boolean:
            guard count <= input.remaining * 8 else { throw ParquetError(description: "a page ends early") }
            let values = (0..<count).map { ParquetValue.bool(input.bits(at: $0, width: 1) != 0) }
            input.position += (count + 7) / 8
            return values
        case .int32:
            return try (0..<count).map { _ in
                meaning.int32(Int32(truncatingIfNeeded: try input.littleEndian(4)))
            }
        case .int64:
            return try (0..<count).map { _ in meaning.int64(Int64(bitPattern: try input.littleEndian(8))) }
        case .int96:
            return try (0..<count).map { _ in meaning.int96(try input.take(12)) }
        case .float:
            return try (0..<count).map { _ in
                .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: try input.littleEndian(4)))))
            }
        case .double:
            return try (0..<count).map { _ in .double(Double(bitPattern: try input.littleEndian(8))) }
        case .byteArray:
            return try (0..<count).map { _ in
                let length = Int(try input.littleEndian(4))
                return meaning.bytes(try input.take(length))
            }
        case .fixedLengthByteArray:
            guard meaning.typeLength > 0 else { throw ParquetError(description: "a fixed length of 0 bytes") }
            return try (0..<count).map { _ in meaning.bytes(try input.take(meaning.typeLength)) }
        }
    }
}
