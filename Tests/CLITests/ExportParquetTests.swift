// `export --format parquet` through the binary against the real PostgreSQL, read back by pyarrow: every task a row
// holding what its JSONL line holds, typed (boxes as lists of doubles, metadata as JSON text), --status honoured.

import Foundation
import Postgres
import TestSupport
import Testing

@testable import infmllm

@Suite(
    .enabled(if: ParquetReaders.runs, "needs pyarrow and DuckDB: INFMLLM_PARQUET_PYTHON=$(tools/parquet_readers.sh)"))
struct ExportParquetTests {
    @Test func everyTaskIsARowHoldingItsJSONLine() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let (folder, turned, plain) = try ExportLabelStudioTests.images(sandbox)
        defer { try? FileManager.default.removeItem(at: folder) }
        try ExportLabelStudioTests.enqueueGrounding(
            sandbox, job: "boxes",
            [
                ["image": turned, "expression": "the dog", "id": "sku-1", "tags": ["a", "b"]],
                ["image": turned, "expression": "the cat"], ["image": plain, "expression": "the dog"],
                ["image": plain, "expression": "nothing"],
            ])
        try ExportLabelStudioTests.recordBoxes(sandbox, secondExpression: "the cat")
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            DELETE FROM results WHERE task_id IN (SELECT id FROM tasks WHERE input_text = 'nothing');
            UPDATE tasks SET status = 'failed', last_error = 'corrupt PNG: "quoted", and a
            line break' WHERE input_text = 'nothing';
            """)

        let jsonl = try sandbox.run(["export", "boxes", "--format", "jsonl"])
        #expect(jsonl.status == 0, "\(jsonl.output)")
        let objects = try jsonl.output.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(objects.count == 4)
        let file = EnqueueStreamingTests.file("boxes.parquet")
        defer { try? FileManager.default.removeItem(at: file) }
        let exported = try sandbox.run(["export", "boxes", "--format", "parquet", "--output", file.path])
        #expect(exported.status == 0, "\(exported.output)")
        let report = try ParquetReaders.read(file)
        #expect(report["duckdb_agrees"] as? Bool == true && report["sizes_agree"] as? Bool == true)
        #expect((report["created_by"] as? String)?.hasPrefix("infmllm version ") == true)
        let types = try #require(report["types"] as? [String: String])
        #expect(
            types == [
                "task_id": "int64", "image": "string", "width": "int64", "height": "int64", "input": "string",
                "status": "string", "error": "string", "output": "string", "model": "string",
                "boxes": "list<element: list<element: double not null> not null>", "orientation": "int64",
                "confidence": "double", "metadata": "string",
            ])
        let rows = try #require(report["rows"] as? [[String: Any]])
        #expect(rows.count == objects.count)
        for (row, object) in zip(rows, objects) {
            for (key, value) in row {
                let expected = object[key]
                if key == "metadata", let text = value as? String {
                    let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
                    #expect(
                        NSDictionary(dictionary: parsed as! [String: Any]).isEqual(
                            to: expected as? [String: Any] ?? [:]))
                } else if value is NSNull {
                    #expect(expected == nil, "\(key) of task \(row["task_id"] ?? "?"): JSONL has \(expected ?? "")")
                } else {
                    #expect(
                        (value as? NSObject)?.isEqual(expected) == true,
                        "\(key) of task \(row["task_id"] ?? "?"): \(value) against \(expected ?? "nothing")")
                }
            }
        }
        #expect(rows.contains { ($0["boxes"] as? [[Double]])?.first == [0, 0, 20, 30, 0, 0, 0.03125, 0.0625] })
        #expect(rows.contains { ($0["error"] as? String)?.hasPrefix("corrupt PNG") == true })

        // --status takes only the tasks in those states.
        let failures = EnqueueStreamingTests.file("failures.parquet")
        defer { try? FileManager.default.removeItem(at: failures) }
        let failed = try sandbox.run([
            "export", "boxes", "--format", "parquet", "--status", "failed", "--output", failures.path,
        ])
        #expect(failed.status == 0, "\(failed.output)")
        let failedRows = try #require(try ParquetReaders.read(failures)["rows"] as? [[String: Any]])
        #expect(failedRows.count == 1 && failedRows[0]["status"] as? String == "failed")
    }
}

/// Rows gathered into row groups: full at a count of rows, or sooner at a size of text, and nothing lost between.
@Suite struct ParquetRowGroupsTests {
    @Test func groupsFillByRowsOrBytes() throws {
        func row(_ id: Int, output: Int) throws -> ExportRow {
            var row = try ExportCSVTests.row(id, output: String(repeating: "o", count: output), boxes: [[1, 2, 3, 4]])
            row.metadata = nil
            return row
        }
        var groups = ParquetRowGroups(rows: 3, bytes: 1_000)
        var full: [[Int64]] = []
        for id in 1...7 {
            if let group = groups.add(try row(id, output: 10)) { full.append(group.map(\.taskID)) }
        }
        #expect(full == [[1, 2, 3], [4, 5, 6]])
        #expect(groups.rest().map(\.taskID) == [7] && groups.rest().isEmpty)
        // A row of 700 bytes and one of 400 fill a group of 1,000 bytes before its third row.
        #expect(groups.add(try row(8, output: 700)) == nil)
        #expect(groups.add(try row(9, output: 400))?.map(\.taskID) == [8, 9])
        #expect(ParquetRowGroups.size(of: try row(1, output: 10)) == 64 + "/images/1.jpg".utf8.count + 13 + 10 + 4 + 32)
    }
}
