// `export --format parquet`: a job's rows as an Apache Parquet file, the columns JSONL's keys, typed (boxes a list of
// lists of doubles), written a row group at a time as rows come from the database.

import Foundation
import Parquet
import Postgres

extension ExportCommand {
    /// The columns, in JSONL's key names and order of meaning.
    static let parquetColumns = [
        ParquetColumn("task_id", .int64, optional: false), ParquetColumn("image", .string, optional: false),
        ParquetColumn("width", .int64), ParquetColumn("height", .int64),
        ParquetColumn("input", .string, optional: false),
        ParquetColumn("status", .string, optional: false), ParquetColumn("error", .string),
        ParquetColumn("output", .string), ParquetColumn("model", .string),
        ParquetColumn("boxes", .doubleLists, optional: false), ParquetColumn("orientation", .int64),
        ParquetColumn("confidence", .double), ParquetColumn("metadata", .string),
    ]

    /// Writes the job's rows (the states asked for) to `sink` as one Parquet file.
    func writeParquet(store: PostgresJobStore, job: Int64, to sink: ExportSink) throws {
        let writer = try ParquetWriter(
            columns: Self.parquetColumns, createdBy: "infmllm version \(InfMLLM.configuration.version)"
        ) { try sink.write($0) }
        var groups = ParquetRowGroups()
        try rows(store, job: job) { rows in
            for row in rows {
                if let group = groups.add(row) { try writer.write(rowGroup: Self.parquetValues(group)) }
            }
        }
        try writer.write(rowGroup: Self.parquetValues(groups.rest()))
        try writer.finish()
    }

    /// `rows` as the values of `parquetColumns`.
    static func parquetValues(_ rows: [ExportRow]) -> [ParquetValues] {
        [
            .int64(rows.map(\.taskID)), .string(rows.map(\.image)), .int64(rows.map { $0.width.map(Int64.init) }),
            .int64(rows.map { $0.height.map(Int64.init) }), .string(rows.map(\.input)), .string(rows.map(\.status)),
            .string(rows.map(\.error)), .string(rows.map(\.output)), .string(rows.map(\.model)),
            .doubleLists(rows.map(\.boxes)), .int64(rows.map { $0.orientation.map(Int64.init) }),
            .double(rows.map(\.confidence)), .string(rows.map(\.metadata)),
        ]
    }
}

/// Rows gathered into row groups: a group is full at `rows` rows, or sooner at `bytes` of text and boxes (a page of
/// a column must stay under 2 GiB, and a group is held in memory), so that readers scan long runs of values.
struct ParquetRowGroups {
    let rows: Int
    let bytes: Int
    private var pending: [ExportRow] = []
    private var pendingBytes = 0

    init(rows: Int = 65_536, bytes: Int = 128 << 20) {
        self.rows = max(1, rows)
        self.bytes = bytes
    }

    /// Adds `row`; the group's rows when it fills the group.
    mutating func add(_ row: ExportRow) -> [ExportRow]? {
        pending.append(row)
        pendingBytes += Self.size(of: row)
        guard pending.count >= rows || pendingBytes >= bytes else { return nil }
        return rest()
    }

    /// The rows of the group not yet full (none when the last was just handed out), and a new group after them.
    mutating func rest() -> [ExportRow] {
        defer {
            pending = []
            pendingBytes = 0
        }
        return pending
    }

    /// About what `row` adds to a group's pages: its texts' bytes and its boxes' numbers.
    static func size(of row: ExportRow) -> Int {
        [row.image, row.input, row.error, row.output, row.model, row.metadata].reduce(64) { $0 + ($1?.utf8.count ?? 0) }
            + row.boxes.reduce(0) { $0 + 8 * $1.count }
    }
}
