// A file on an HTTP(S) server or in S3, read by range requests: its end first (which gives its size and what tells
// this version of it from another), then any range, each on condition that the file is still that version, so that
// a file replaced while it is read is refused, not spliced. Parquet manifests are read through it.

import Parquet

final class RemoteFile: ParquetByteSource {
    let url: String
    let size: Int
    /// Range requests of at least 8 MiB: a round trip each.
    let readSize = 8 << 20
    private let http: HTTPFetcher
    private let validators: HTTPFetcher.Validators
    /// The file's last bytes, read first: a Parquet file's footer is there.
    private let tail: [UInt8]

    /// The bytes of its end held from the first request.
    static let tailBytes = 1 << 20

    init(url: String, http: HTTPFetcher) throws {
        self.url = url
        self.http = http
        (tail, size, validators) = try http.fetchTail(url, count: Self.tailBytes)
    }

    func read(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, count <= size - offset else {
            throw ParquetError(description: "\(count) bytes at \(offset) lie past the file's end (\(size) bytes)")
        }
        let tailStart = size - tail.count
        if offset >= tailStart { return Array(tail[(offset - tailStart)..<(offset - tailStart + count)]) }
        do {
            return try http.fetch(url, range: offset..<(offset + count), condition: validators)
        } catch let error as ImageSourceError {
            throw ParquetError(description: error.reason)
        }
    }
}
