// Parquet files on a real HTTP server (nginx on loopback), read by range requests: the same rows as the file on disk,
// in windows of several pages a request, and a file replaced while it is read refused rather than spliced.

import Foundation
import ImageSources
import Parquet
import TestSupport
import Testing

@Suite struct RemoteParquetTests {
    static let columns = [
        ParquetColumn("id", .int64, optional: false), ParquetColumn("url", .string), ParquetColumn("score", .double),
    ]

    /// Three row groups of `rows` rows each, uncompressed, so that the file spans several 8 MiB windows.
    static func file(rows: Int, tag: String = "") throws -> Data {
        var bytes = Data()
        let writer = try ParquetWriter(columns: columns, compression: .none, createdBy: "infmllm-tests version 1.0.0") {
            bytes.append($0)
        }
        for group in 0..<3 {
            let ids = (0..<rows).map { Int64(group * rows + $0) }
            try writer.write(rowGroup: [
                .int64(ids),
                .string(ids.map { $0 % 97 == 0 ? nil : "https://images.example.org/archive/\(tag)\($0).jpg" }),
                .double(ids.map { Double($0) / 8 }),
            ])
        }
        try writer.finish()
        return bytes
    }

    static func rows(_ reader: ParquetReader) throws -> [[ParquetValue?]] {
        var rows: [[ParquetValue?]] = []
        try reader.forEachRow(columns: [0, 1, 2]) { rows.append($0) }
        return rows
    }

    @Test func aServedFileReadsAsTheFileOnDisk() throws {
        let server = try NginxServer()
        let data = try Self.file(rows: 100_000)
        try server.put("/meta/part-00000.parquet", data)
        let local = try ParquetReader(path: server.root.appendingPathComponent("meta/part-00000.parquet").path)
        let reader = ImageReader(fetch: FetchSettings(allowPrivateAddresses: true))
        let remote = try reader.parquet(server.url("/meta/part-00000.parquet"))
        #expect(remote.fields.map(\.name) == ["id", "url", "score"] && remote.rows == 300_000)
        let rows = try Self.rows(remote)
        #expect(rows.count == 300_000)
        #expect(rows == (try Self.rows(local)))
        // Range requests, each of several pages: fewer than one a column chunk's page, more than one in all.
        let requests = try server.settledAccessLog().filter { $0.contains("/meta/part-00000.parquet") }
        #expect(requests.count >= 3 && requests.count <= 12, "\(data.count) bytes in \(requests.count) requests")
    }

    @Test func aFileReplacedWhileItIsReadIsRefused() throws {
        let server = try NginxServer()
        try server.put("/part.parquet", try Self.file(rows: 100_000))
        let remote = try ImageReader(fetch: FetchSettings(allowPrivateAddresses: true)).parquet(
            server.url("/part.parquet"))
        try server.put("/part.parquet", try Self.file(rows: 100_000, tag: "other/"))
        #expect {
            try remote.forEachRow(columns: [0, 1, 2]) { _ in }
        } throws: { "\($0)".contains("HTTP 412: the file has changed") }
    }

    @Test func aURLThatIsNotParquetIsRefusedWithTheReason() throws {
        let server = try NginxServer()
        try server.put("/rows.parquet", Data("{\"image\": \"a.jpg\"}\n".utf8))
        let reader = ImageReader(fetch: FetchSettings(allowPrivateAddresses: true))
        #expect {
            try reader.parquet(server.url("/rows.parquet"))
        } throws: { "\($0)".contains("/rows.parquet: not a Parquet file") }
        #expect {
            try reader.parquet(server.url("/missing.parquet"))
        } throws: { "\($0)".contains("404") }
    }

    /// In an S3 bucket: signed range requests (moto's server checks every signature).
    @Test(.enabled(if: S3Server.runs, "needs moto's S3 server: INFMLLM_S3_SERVER=$(tools/s3_server.sh)"))
    func aFileInAnS3BucketIsReadWithSignedRangeRequests() throws {
        let server = try S3Server()
        let data = try Self.file(rows: 20_000)
        try server.put("datasets", "meta/part-00000.parquet", data)
        try server.requireSignatures()
        let settings = S3Settings(
            accessKey: server.accessKey, secretKey: server.secretKey, endpoint: server.endpoint)
        let reader = ImageReader(fetch: FetchSettings(allowPrivateAddresses: true, s3: settings))
        let remote = try reader.parquet("s3://datasets/meta/part-00000.parquet")
        let folder = ScratchFolders.url("infmllm-s3-parquet")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try data.write(to: folder.appendingPathComponent("local.parquet"))
        let local = try ParquetReader(path: folder.appendingPathComponent("local.parquet").path)
        #expect(try Self.rows(remote) == (try Self.rows(local)))
    }
}
