// `export --format parquet`: a job's rows as an Apache Parquet file, the columns JSONL's keys, typed (boxes a list of
// lists of doubles), written a row group at a time as rows come from the database.

import Foundation
import Parquet
import Postgres

extension ExportCommand {
    /// The columns, in JSONL's key names and order of meaning.
    static let parquetColumns = [
        ParquetColumn("task_id", .int64, optional: false), ParquetColumn("image", .string, optional: false),
        ParquetColumn("width", .int64), ParquetColumn("height", .int64), ParquetColumn("input", .string),
        ParquetColumn("status", .string, optional: false), ParquetColumn("error", .string),
        ParquetColumn("output", .string), ParquetColumn("model", .string),
        ParquetColumn("boxes", .doubleLists, optional: false), ParquetColumn("orientation", .int64),
        ParquetColumn("confidence", .double), ParquetColumn("metadata", .string),
    ]

    /// Rows a row group holds: big enough that readers scan long runs, small enough to hold in memory (a few tens
    /// of MB of text).
    static let parquetRowGroupRows = 65_536

    /// Writes the job's rows (the states asked for) to `sink` as one Parquet file.
    func writeParquet(store: PostgresJobStore, job: Int64, to sink: ExportSink) throws {
        let writer = try ParquetWriter(columns: Self.parquetColumns) { try sink.write($0) }
        var pending: [ExportRow] = []
        try rows(store, job: job) { rows in
            pending += rows
            while pending.count >= Self.parquetRowGroupRows {
                try writer.write(rowGroup: Self.parquetValues(pending.prefix(Self.parquetRowGroupRows)))
                pending.removeFirst(Self.parquetRowGroupRows)
            }
        }
        try writer.write(rowGroup: Self.parquetValues(pending[...]))
        try writer.finish()
    }

    /// `rows` as the values of `parquetColumns`.
    static func parquetValues(_ rows: ArraySlice<ExportRow>) -> [ParquetValues] {
        [
            .int64(rows.map(\.taskID)), .string(rows.map(\.image)), .int64(rows.map { $0.width.map(Int64.init) }),
            .int64(rows.map { $0.height.map(Int64.init) }), .string(rows.map(\.input)), .string(rows.map(\.status)),
            .string(rows.map(\.error)), .string(rows.map(\.output)), .string(rows.map(\.model)),
            .doubleLists(rows.map(\.boxes)), .int64(rows.map { $0.orientation.map(Int64.init) }),
            .double(rows.map(\.confidence)), .string(rows.map(\.metadata)),
        ]
    }
}
