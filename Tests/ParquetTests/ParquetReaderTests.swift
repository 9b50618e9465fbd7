// Parquet files as other tools write them, read by this project's reader: pyarrow with every codec it has but BROTLI,
// with and without dictionaries, data pages of versions 1 and 2, small pages and row groups, the DELTA_* and
// BYTE_STREAM_SPLIT encodings and INT96 timestamps, DuckDB and Polars (tools/reference/parquet_write.py writes them
// and what the reader must give); this project's own files read back; and damaged files, which must end in an error, never a trap.

import Foundation
import TestSupport
import Testing

@testable import Parquet

@Suite(
    .enabled(if: ParquetReaders.runs, "needs pyarrow and DuckDB: INFMLLM_PARQUET_PYTHON=$(tools/parquet_readers.sh)"),
    .serialized)
struct ParquetReaderTests {
    /// The files of `parquet_write.py`, written once for the suite.
    static let written: Result<URL, Error> = Result {
        guard let python = ParquetReaders.python else {
            throw ParquetReadError(description: "INFMLLM_PARQUET_PYTHON is not set")
        }
        let folder = ScratchFolders.url("infmllm-parquet-read")
        let result = try ProcessResult.run(
            URL(fileURLWithPath: python), [RepositoryFiles.path("tools/reference/parquet_write.py"), folder.path])
        guard result.status == 0 else { throw ParquetReadError(description: "parquet_write.py: \(result.output)") }
        return folder
    }

    static func file(_ name: String) throws -> String { try written.get().appendingPathComponent(name).path }

    /// A value as `parquet_write.py` tags it.
    static func tagged(_ value: ParquetValue?) -> [String]? {
        switch value {
        case nil: nil
        case let .bool(flag)?: ["t", flag ? "true" : "false"]
        case let .int(integer)?: ["i", String(integer)]
        case let .double(number)?: ["d", number.isNaN ? "nan" : "\(number)"]
        case let .string(text)?: ["s", text]
        case let .bytes(bytes)?: ["b", bytes.map { String(format: "%02x", $0) }.joined()]
        }
    }

    /// The expected values' tags as strings (JSON's true and false become "true" and "false").
    static func tags(_ value: Any) -> [String]? {
        guard let pair = value as? [Any], pair.count == 2, let kind = pair[0] as? String else { return nil }
        if kind == "t", let flag = pair[1] as? Bool { return ["t", flag ? "true" : "false"] }
        return [kind, "\(pair[1])"]
    }

    static let files =
        ["none", "snappy", "gzip", "zstd", "lz4"].flatMap { codec in
            ["dict", "plain"].flatMap { dictionary in
                ["1", "2"].map { "pyarrow-\(codec)-\(dictionary)-v\($0).parquet" }
            }
        } + ["pyarrow-delta-v1.parquet", "pyarrow-delta-v2.parquet", "pyarrow-int96.parquet"]
        + ["duckdb-snappy.parquet", "duckdb-zstd.parquet", "polars-default.parquet", "polars-lz4-small.parquet"]

    @Test(arguments: files)
    func readsWhatOtherToolsWrite(_ name: String) throws {
        let path = try Self.file(name)
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + ".json")))
                as? [String: Any])
        let reader = try ParquetReader(path: path)
        let fields = try #require(expected["fields"] as? [[String: Any]])
        #expect(reader.fields.map(\.name) == fields.map { $0["name"] as? String ?? "" })
        #expect(reader.fields.map { $0.nested != nil } == fields.map { $0["nested"] as? Bool ?? false })
        let nested = Dictionary(
            uniqueKeysWithValues: reader.fields.compactMap { field in field.nested.map { (field.name, $0) } })
        let expectedNested = ["tags": "a list", "point": "a struct", "props": "a map"].filter { name, _ in
            fields.contains { $0["name"] as? String == name }
        }
        #expect(nested == expectedNested)
        #expect(reader.fields.first { $0.name == "url" }?.isText == true)
        #expect(reader.fields.first { $0.name == "bin" }?.isText == false)

        let flat = reader.fields.indices.filter { reader.fields[$0].nested == nil }
        let rows = try #require(expected["rows"] as? [[Any]])
        #expect(reader.rows == rows.count)
        var index = 0
        var mismatches: [String] = []
        try reader.forEachRow(columns: flat) { values in
            defer { index += 1 }
            guard index < rows.count else { return }
            for (column, (value, want)) in zip(flat, zip(values, rows[index]))
            where Self.tagged(value) != Self.tags(want) && mismatches.count < 5 {
                mismatches.append(
                    "row \(index) \(reader.fields[column].name): \(String(describing: value)) against \(want)")
            }
        }
        #expect(index == rows.count)
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    /// Only the columns asked for are read, in the order asked.
    @Test func readsTheColumnsAskedForInTheirOrder() throws {
        let reader = try ParquetReader(path: try Self.file("pyarrow-snappy-dict-v1.parquet"))
        let url = try #require(reader.fields.firstIndex { $0.name == "url" })
        let id = try #require(reader.fields.firstIndex { $0.name == "id" })
        var rows: [[ParquetValue?]] = []
        try reader.forEachRow(columns: [url, id]) { rows.append($0) }
        #expect(rows.count == 1000)
        #expect(rows[42] == [.string("https://example.com/images/000042.jpg"), .int(42)])
        let tags = try #require(reader.fields.firstIndex { $0.name == "tags" })
        #expect(throws: ParquetError.self) { try reader.forEachRow(columns: [tags]) { _ in } }
    }

    @Test func aCodecItDoesNotDecodeIsNamed() throws {
        let reader = try ParquetReader(path: try Self.file("codec-brotli.parquet"))
        #expect {
            try reader.forEachRow(columns: [0]) { _ in }
        } throws: {
            let text = "\($0)"
            return text.contains("row group 1, column id") && text.contains("compressed with BROTLI")
        }
    }

    @Test func aFileOfNoRowsHasItsFieldsAndNoRows() throws {
        let reader = try ParquetReader(path: try Self.file("empty.parquet"))
        #expect(reader.rows == 0 && reader.fields.count == 19)
        var rows = 0
        try reader.forEachRow(columns: [0, 1]) { _ in rows += 1 }
        #expect(rows == 0)
    }

    /// This project's own files (`export --format parquet`) read back: flat columns' values, lists described.
    @Test(arguments: [ParquetCompression.gzip, .none])
    func readsWhatThisProjectWrites(_ compression: ParquetCompression) throws {
        let folder = ScratchFolders.url("infmllm-parquet-own")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var bytes = Data()
        let writer = try ParquetWriter(
            columns: ParquetWriterTests.columns, compression: compression, createdBy: ParquetWriterTests.createdBy
        ) { bytes.append($0) }
        let groups = ParquetWriterTests.groups()
        for group in groups { try writer.write(rowGroup: group) }
        try writer.finish()
        let path = folder.appendingPathComponent("own.parquet").path
        try bytes.write(to: URL(fileURLWithPath: path))
        let reader = try ParquetReader(path: path)
        #expect(reader.fields.map(\.nested) == [nil, nil, nil, nil, "a list", "a list"])
        var read: [[ParquetValue?]] = []
        try reader.forEachRow(columns: [0, 1, 2, 3]) { read.append($0) }
        var expected: [[ParquetValue?]] = []
        for group in groups {
            for row in 0..<group[0].count {
                expected.append(
                    group.prefix(4).map { values -> ParquetValue? in
                        switch values {
                        case let .int64(list): list[row].map { .int($0) }
                        case let .double(list): list[row].map { .double($0) }
                        case let .string(list): list[row].map { .string($0) }
                        case .doubleLists: nil
                        }
                    })
            }
        }
        #expect(read == expected)
    }

    @Test func aFileThatIsNotParquetIsRefusedWithTheReason() throws {
        let folder = ScratchFolders.url("infmllm-parquet-not")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("rows.parquet")
        try Data("{\"image\": \"a.jpg\"}\n".utf8).write(to: json)
        #expect { try ParquetReader(path: json.path) } throws: { "\($0)".contains("not a Parquet file") }
        #expect { try ParquetReader(path: folder.path) } throws: { "\($0)".contains("not a regular file") }
        #expect { try ParquetReader(path: folder.path + "/missing.parquet") } throws: {
            "\($0)".contains("cannot open")
        }
        // Cut short: the end's magic is gone.
        let whole = try Data(contentsOf: URL(fileURLWithPath: try Self.file("pyarrow-zstd-dict-v2.parquet")))
        let cut = folder.appendingPathComponent("cut.parquet")
        try whole.prefix(whole.count / 2).write(to: cut)
        #expect { try ParquetReader(path: cut.path) } throws: { "\($0)".contains("cut short") }
    }

    /// Damaged files, by bytes changed at random (in the pages and in the footer) or cut: every read ends in rows or
    /// in a `ParquetError`, never in a trap or an unbounded allocation (a trap would end the test process).
    @Test(arguments: ["pyarrow-snappy-dict-v1.parquet", "pyarrow-gzip-plain-v2.parquet", "pyarrow-delta-v2.parquet"])
    func damagedFilesEndInErrorsNotTraps(_ name: String) throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Self.file(name))))
        let folder = ScratchFolders.url("infmllm-parquet-damaged")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("damaged.parquet").path
        var random = SplitMix64(seed: 0x5EED_0000 ^ UInt64(name.utf8.count))
        let footerStart =
            original.count - 8 - Int(original[original.count - 8]) - Int(original[original.count - 7]) << 8
        var failures = 0
        for attempt in 0..<120 {
            var bytes = original
            // A third of the attempts damage the footer, where one changed byte can change every size.
            let range = attempt % 3 == 0 ? footerStart..<(original.count - 8) : 4..<footerStart
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let at = range.lowerBound + Int(random.next() % UInt64(range.count))
                bytes[at] = UInt8(truncatingIfNeeded: random.next())
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let reader = try ParquetReader(path: path)
                let flat = reader.fields.indices.filter { reader.fields[$0].nested == nil }
                try reader.forEachRow(columns: flat) { _ in }
            } catch is ParquetError {
                failures += 1
            }
        }
        #expect(failures > 0, "no damage was noticed: the test changed nothing that is read")
    }
}

/// LZ4 blocks made by hand: literals, a long length, an overlapping copy, and each way a block can lie.
struct LZ4BlockTests {
    @Test func aCopyMayOverlapTheBytesItWritesAndLengthsGoOnIn255s() throws {
        // Literal "ab", then a copy of 4 + 15 + 255 + 1 = 275 from 2 back; then the last literals, "c".
        let block: [UInt8] = [0x2F, 0x61, 0x62, 2, 0, 255, 1, 0x10, 0x63]
        let expected = Array("ab".utf8) + (0..<275).map { Array("ab".utf8)[$0 % 2] } + Array("c".utf8)
        #expect(try LZ4Block.decompress(block, expected: 278) == expected)
    }

    @Test(arguments: [
        ([0x20, 0x61, 0x62, 5, 0] as [UInt8], 9, "a copy from outside the output"),
        ([0x30, 0x61, 0x62] as [UInt8], 3, "a literal past the end"),
        ([0x20, 0x61, 0x62] as [UInt8], 4, "2 of 4 bytes"),
        ([0x20, 0x61, 0x62, 2] as [UInt8], 6, "a cut offset"),
        ([0xF0, 255, 255] as [UInt8], 600, "a cut length"),
        ([0x20, 0x61, 0x62, 0, 0] as [UInt8], 6, "a copy from outside the output"),
    ])
    func aDamagedBlockIsAnErrorNamingHow(_ block: [UInt8], _ expected: Int, _ reason: String) throws {
        #expect { try LZ4Block.decompress(block, expected: expected) } throws: { "\($0)".contains(reason) }
    }
}

/// Snappy blocks made by hand: a literal, a copy that overlaps what it writes (a run), and each way a block can lie.
struct SnappyTests {
    @Test func aCopyMayOverlapTheBytesItWrites() throws {
        // 7 bytes: literal "ab", then a 1-byte-offset copy of 4 from 2 back ("abab"), then a 2-byte-offset copy of 1.
        let block: [UInt8] = [7, 0b0000_0100, 0x61, 0x62, 0b0000_0001, 2, 0b0000_0010, 1, 0]
        #expect(try Snappy.decompress(block, expected: 7) == Array("abababb".utf8))
    }

    @Test(arguments: [
        ([10, 0b0000_0100, 0x61, 0x62, 0b0000_0101, 5] as [UInt8], "a copy from outside the output"),
        ([2, 0b0000_1000, 0x61, 0x62] as [UInt8], "a literal past the end"),
        ([4, 0b0000_0100, 0x61, 0x62] as [UInt8], "2 of 4 bytes"),
        ([3, 0b0000_0100, 0x61, 0x62, 0x63] as [UInt8], "a cut copy"),
        ([5, 0b0000_0100, 0x61] as [UInt8], "a literal past the end"),
        ([0x80] as [UInt8], "a damaged length"),
        ([9] as [UInt8], "9 bytes where the page header says 3"),
    ])
    func aDamagedBlockIsAnErrorNamingHow(_ block: [UInt8], _ reason: String) throws {
        let expected = block == [9] ? 3 : Int(block[0] & 0x7F)
        #expect { try Snappy.decompress(block, expected: expected) } throws: { "\($0)".contains(reason) }
    }
}
