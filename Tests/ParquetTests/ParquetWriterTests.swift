// Parquet files as this project writes them, read back by pyarrow (the reader under pandas and Hugging Face
// datasets) and DuckDB: every column kind, nulls, empty lists and strings, several row groups, gzip and no
// compression, statistics. ops/test.sh installs the readers (tools/parquet_readers.sh), names their Python in
// INFMLLM_PARQUET_PYTHON and sets INFMLLM_REQUIRE_PARQUET=1, so the suite fails rather than skips without them.

import Foundation
import Parquet
import TestSupport
import Testing

@Suite(
    .enabled(if: ParquetReaders.runs, "needs pyarrow and DuckDB: INFMLLM_PARQUET_PYTHON=$(tools/parquet_readers.sh)"))
struct ParquetWriterTests {
    static let createdBy = "infmllm-tests version 1.0.0"
    static let columns = [
        ParquetColumn("id", .int64, optional: false), ParquetColumn("width", .int64),
        ParquetColumn("text", .string), ParquetColumn("score", .double),
        ParquetColumn("boxes", .doubleLists), ParquetColumn("required_boxes", .doubleLists, optional: false),
    ]

    /// Two row groups: the first of every edge (nulls, empty strings and lists, an empty inner list, several boxes,
    /// non-ASCII text, extreme numbers), the second long enough for runs of equal levels.
    static func groups() -> [[ParquetValues]] {
        let first: [ParquetValues] = [
            .int64([1, 2, 3, Int64.max]), .int64([640, nil, -1, Int64.min]),
            .string(["a dog on a sofa", nil, "", "café 👍\n\"quoted\""]), .double([0.5, nil, 1e-300, -0.0]),
            .doubleLists([[[1, 2, 3, 4]], nil, [], [[0.25, 0.5], [], [7]]]),
            .doubleLists([[], [[1]], [[2, 3], [4, 5]], []]),
        ]
        let count = 1_000
        let second: [ParquetValues] = [
            .int64((0..<count).map { Int64(10 + $0) }), .int64((0..<count).map { $0 % 7 == 0 ? nil : Int64($0) }),
            .string((0..<count).map { $0 % 5 == 0 ? nil : "caption \($0)" }),
            .double((0..<count).map { $0 < 500 ? nil : Double($0) / 8 }),
            .doubleLists((0..<count).map { $0 % 3 == 0 ? [] : [[Double($0), 1, 2, 3]] }),
            .doubleLists((0..<count).map { _ in [[1, 2, 3, 4], [5, 6, 7, 8]] }),
        ]
        return [first, second]
    }

    /// The rows of `groups` as pyarrow's `to_pylist` gives them (JSON: nulls as NSNull).
    static func expectedRows() -> [[String: Any]] {
        var rows: [[String: Any]] = []
        for group in groups() {
            for row in 0..<group[0].count {
                var values: [String: Any] = [:]
                for (column, list) in zip(columns, group) {
                    let value: Any? =
                        switch list {
                        case let .int64(values): values[row].map { NSNumber(value: $0) }
                        case let .double(values): values[row].map { NSNumber(value: $0) }
                        case let .string(values): values[row]
                        case let .doubleLists(values): values[row]
                        }
                    values[column.name] = value ?? NSNull()
                }
                rows.append(values)
            }
        }
        return rows
    }

    /// What the readers find in the file of `groups` under `columns`, written to a scratch folder.
    static func written(
        _ groups: [[ParquetValues]], columns: [ParquetColumn] = columns, compression: ParquetCompression = .gzip
    ) throws -> [String: Any] {
        let folder = ScratchFolders.url("infmllm-parquet")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var bytes = Data()
        let writer = try ParquetWriter(columns: columns, compression: compression, createdBy: createdBy) {
            bytes.append($0)
        }
        for group in groups { try writer.write(rowGroup: group) }
        try writer.finish()
        let file = folder.appendingPathComponent("rows.parquet")
        try bytes.write(to: file)
        return try ParquetReaders.read(file)
    }

    @Test(arguments: [ParquetCompression.gzip, .none])
    func pyarrowReadsEveryKindOfColumn(_ compression: ParquetCompression) throws {
        let report = try Self.written(Self.groups(), compression: compression)
        #expect(report["row_groups"] as? [Int] == [4, 1_000])
        #expect(report["created_by"] as? String == Self.createdBy)
        #expect(report["duckdb_agrees"] as? Bool == true, "DuckDB reads other rows than pyarrow")
        #expect(report["sizes_agree"] as? Bool == true, "the column chunks' sizes do not add up to the file's")
        // JSON cannot tell -0.0 from 0.0: the doubles' reprs can.
        #expect(
            (report["double_repr"] as? [String: [String]])?["score"]?.prefix(4) == ["0.5", "None", "1e-300", "-0.0"])
        // Statistics: nulls everywhere but the list columns, least and greatest integers and short strings.
        let statistics = try #require(report["statistics"] as? [[String: Any]])
        let first = try #require(statistics.first)
        func stats(_ column: String) -> [String: String] {
            ((first[column] as? [String: Any]) ?? [:]).mapValues { "\($0)" }
        }
        #expect(stats("id") == ["null_count": "0", "min": "1", "max": "\(Int64.max)"])
        #expect(stats("width") == ["null_count": "1", "min": "\(Int64.min)", "max": "640"])
        #expect(stats("text") == ["null_count": "1", "min": "", "max": "café 👍\n\"quoted\""])
        #expect(stats("score") == ["null_count": "1"])
        #expect(first["boxes.list.element.list.element"] is NSNull)
        // Strings compare by their bytes.
        let second = try #require(statistics.last?["text"] as? [String: Any])
        #expect(second["min"] as? String == "caption 1" && second["max"] as? String == "caption 999")
        let types = try #require(report["types"] as? [String: String])
        #expect(types["id"] == "int64" && types["width"] == "int64" && types["score"] == "double")
        #expect(types["text"] == "string", "\(types)")
        #expect(types["boxes"] == "list<element: list<element: double not null> not null>", "\(types)")
        let nullable = try #require(report["nullable"] as? [String: Bool])
        #expect(nullable["id"] == false && nullable["width"] == true && nullable["required_boxes"] == false)
        let rows = try #require(report["rows"] as? [[String: Any]])
        let expected = Self.expectedRows()
        #expect(rows.count == expected.count)
        for (index, (row, want)) in zip(rows, expected).enumerated() {
            #expect(NSDictionary(dictionary: row).isEqual(to: want), "row \(index): \(row) against \(want)")
        }
    }

    /// A string over 64 bytes leaves its chunk without least and greatest values (its null count stays).
    @Test func aLongStringLeavesItsChunkWithoutLeastAndGreatestValues() throws {
        let report = try Self.written(
            [
                [.string(["a", nil, String(repeating: "x", count: 65)])],
                [.string(["a", String(repeating: "x", count: 64)])],
            ],
            columns: [ParquetColumn("text", .string)])
        let statistics = try #require(report["statistics"] as? [[String: [String: Any]]])
        #expect(statistics[0]["text"]?.count == 1 && statistics[0]["text"]?["null_count"] as? Int == 1)
        #expect(statistics[1]["text"]?["max"] as? String == String(repeating: "x", count: 64))
    }

    @Test func anEmptyFileIsAValidFileOfNoRows() throws {
        let report = try Self.written([])
        #expect((report["rows"] as? [Any])?.isEmpty == true && (report["row_groups"] as? [Int]) == [])
        #expect((report["types"] as? [String: String])?.count == Self.columns.count)
    }

    @Test func valuesThatDoNotFitTheColumnsAreRefused() throws {
        let writer = try ParquetWriter(columns: Self.columns, createdBy: Self.createdBy) { _ in }
        #expect {
            try writer.write(rowGroup: [
                .int64([nil]), .int64([1]), .string([""]), .double([1]), .doubleLists([[]]),
                .doubleLists([[]]),
            ])
        } throws: { "\($0)" == "no value for the required column id" }
        #expect {
            try writer.write(rowGroup: [
                .int64([1]), .double([1]), .string([""]), .double([1]), .doubleLists([[]]),
                .doubleLists([[]]),
            ])
        } throws: { "\($0)" == "the values given for width are not of its kind" }
        #expect {
            try writer.write(rowGroup: [.int64([1, 2])])
        } throws: { "\($0)".contains("one value list a column") }
    }
}
