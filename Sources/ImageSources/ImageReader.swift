// One way in for image bytes, whatever the URI: local files, HTTP(S), and members of tar and zip archives.

import Foundation
import Parquet
import Tensors

/// Reads the bytes of images named by URI. Thread-safe; archives and HTTP connections are shared by every caller.
public final class ImageReader: Sendable {
    /// The largest image, in bytes, read from any source.
    public let maxBytes: Int
    /// Which local files and archives may be read.
    public let files: LocalFiles
    private let http: HTTPFetcher
    private let archives = ArchiveShelf()

    public init(fetch: FetchSettings = FetchSettings(), maxBytes: Int = 64 << 20, files: LocalFiles? = nil) {
        self.maxBytes = maxBytes
        self.files = files ?? .anywhere
        http = HTTPFetcher(settings: fetch)
    }

    /// Whether reading `uri` waits on the network (so many may run at once), rather than on disk and memory.
    public static func isRemote(_ uri: String) -> Bool {
        switch try? ImageLocation(uri) {
        case .http, .remoteTarMember, .remoteZipMember: true
        default: false
        }
    }

    /// A Parquet file on an HTTP(S) server or in S3, its footer read; its pages are read by range requests as its
    /// rows are.
    ///
    /// - Throws: `ImageSourceError` naming the URL and the reason.
    public func parquet(_ url: String) throws -> ParquetReader {
        do {
            return try ParquetReader(source: try RemoteFile(url: url, http: http))
        } catch let error as ParquetError {
            throw ImageSourceError(source: url, reason: error.description)
        }
    }

    /// The bytes of the image at `uri`.
    ///
    /// - Throws: `ImageSourceError` naming the URI and the reason.
    public func bytes(of uri: String) throws -> [UInt8] {
        switch try ImageLocation(uri) {
        case let .file(path):
            return try files.read(path, uri: uri, limit: maxBytes)
        case let .http(url):
            return try http.fetch(url, limit: maxBytes)
        case let .tarMember(archive, member):
            let admitted = try files.admit(archive, uri: uri)
            return try archives.read(member: member, of: admitted, zip: false, uri: uri, limit: maxBytes)
        case let .zipMember(archive, member):
            let admitted = try files.admit(archive, uri: uri)
            return try archives.read(member: member, of: admitted, zip: true, uri: uri, limit: maxBytes)
        case let .remoteTarMember(url, _, data):
            return try remoteMember(data, of: url, uri: uri)
        case let .remoteZipMember(url, member, entry):
            return try remoteMember(member, entry, of: url, uri: uri)
        }
    }

    /// The data of a member of a remote tar archive, read with its header in one range request; the header must
    /// still be that of a regular member of that size (its checksum right), or the archive has changed since it
    /// was listed.
    private func remoteMember(_ data: Range<Int>, of url: String, uri: String) throws -> [UInt8] {
        guard data.count <= maxBytes else {
            throw ImageSourceError(source: uri, reason: "\(data.count) bytes, over the \(maxBytes)-byte limit")
        }
        let header = data.lowerBound - 512
        let bytes: [UInt8]
        do {
            bytes = try http.fetch(url, range: header..<data.upperBound)
        } catch let error as ImageSourceError {
            throw ImageSourceError(source: uri, reason: error.reason, isTransient: error.isTransient)
        }
        let mismatch = bytes.withUnsafeBytes {
            TarIndex.headerMismatch(UnsafeRawBufferPointer(rebasing: $0[0..<512]), size: data.count)
        }
        if let mismatch {
            throw ImageSourceError(
                source: uri,
                reason: "\(mismatch) at byte \(header) of \(url): the archive has changed since it was listed (enqueue "
                    + "it again)")
        }
        return Array(bytes[512...])
    }

    /// The keys of the objects under `prefix` (`s3://bucket/some/prefix/`, or a bucket's `s3://bucket/`), in S3's
    /// order (their UTF-8 bytes), a page of up to 1,000 at a time (ListObjectsV2), each handed to `body` with
    /// `s3://bucket/` before it.
    ///
    /// - Throws: `ImageSourceError` when a page cannot be read (the bucket missing, access denied: HTTP 404, 403).
    public func objects(under prefix: String, pageSize: Int? = nil, _ body: (String) throws -> Void) throws {
        let rest = prefix.dropFirst(5)
        guard ImageLocation.isS3(prefix), let slash = rest.firstIndex(of: "/") else {
            throw ImageSourceError(source: prefix, reason: "an S3 prefix is s3://bucket/ or s3://bucket/some/prefix/")
        }
        let bucket = "s3://" + rest[...slash]
        let keyPrefix = String(rest[rest.index(after: slash)...])
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("encoding-type", "url"), ("prefix", keyPrefix)]
            if let token { query.append(("continuation-token", token)) }
            if let pageSize { query.append(("max-keys", String(pageSize))) }
            let page: String
            do {
                page = String(decoding: try http.fetch(s3: bucket, query: query, limit: 64 << 20), as: UTF8.self)
            } catch let error as ImageSourceError {
                throw ImageSourceError(source: prefix, reason: error.reason, isTransient: error.isTransient)
            }
            for key in Self.elements("Key", in: page) {
                // encoding-type=url: keys come percent-encoded, a space as +, as S3 writes them for any byte.
                try body(bucket + (key.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? key))
            }
            token =
                Self.elements("IsTruncated", in: page).first == "true"
                ? Self.elements("NextContinuationToken", in: page).first.map(Self.unescapeXML) : nil
        } while token != nil
    }

    /// The texts of the elements named `name` in an S3 answer, in order.
    static func elements(_ name: String, in xml: String) -> [String] {
        var found: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(name)>"), let close = rest[open.upperBound...].range(of: "</\(name)>") {
            found.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return found
    }

    static func unescapeXML(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The bytes a local header's extra field may take and still be read with the member in one request (Info-ZIP
    /// writes 20-30; a longer one costs a second request for the rest of the data).
    static let zipExtraAllowance = 1024

    /// The data of a member of a remote zip archive, read with its local header in one range request; the header
    /// must still name the member (and, where it holds them, give the same sizes and CRC-32) and the data must
    /// decode to the CRC-32 that the central directory gave when the archive was listed, or the archive has changed.
    private func remoteMember(_ member: String, _ entry: RemoteZipEntry, of url: String, uri: String) throws
        -> [UInt8]
    {
        func fail(_ reason: String) -> ImageSourceError { ImageSourceError(source: uri, reason: reason) }
        func changed(_ reason: String) -> ImageSourceError {
            fail(
                "\(reason) at byte \(entry.header) of \(url): the archive has changed since it was listed (enqueue it "
                    + "again)")
        }
        guard entry.size <= maxBytes else { throw fail("\(entry.size) bytes, over the \(maxBytes)-byte limit") }
        // zlib's deflate adds 5 bytes a stored block to what it cannot compress, an encoder that only writes fixed
        // codes an eighth; stored data is the member itself. More is not a member's data.
        guard entry.packedSize <= entry.size + entry.size / 4 + 1024 else {
            throw fail("\(entry.packedSize) bytes stored for a member of \(entry.size) bytes: not a zip member's sizes")
        }
        let asked = 30 + member.utf8.count + Self.zipExtraAllowance + entry.packedSize
        var bytes: [UInt8]
        do {
            bytes = try http.fetch(url, range: entry.header..<(entry.header + asked), exact: false)
            guard bytes.count >= ZipDirectory.LocalHeader.size else {
                throw changed("the archive ends before the member's local header")
            }
            guard let local = ZipDirectory.LocalHeader(bytes[...]) else { throw changed("no zip local header") }
            if let mismatch = ZipMember.headerMismatch(local, in: bytes, name: member, entry: entry) {
                throw changed(mismatch)
            }
            let data = local.dataOffset
            if bytes.count < data + entry.packedSize {
                guard bytes.count == asked else { throw changed("the archive ends before the member's data does") }
                let start = entry.header + bytes.count
                bytes += try http.fetch(url, range: start..<(entry.header + data + entry.packedSize))
            }
            return try bytes[data..<(data + entry.packedSize)].withUnsafeBytes {
                try ZipMember.decode($0, method: local.method, size: entry.size, crc32: entry.crc32, uri: uri)
            }
        } catch let error as ImageSourceError where error.source != uri {
            throw ImageSourceError(source: uri, reason: error.reason, isTransient: error.isTransient)
        }
    }

    /// The members of a remote archive, in archive order, each with the URI a worker reads it by, and why listing
    /// stopped early, if it did.
    public struct RemoteListing: Sendable {
        public let names: [String]
        public let uris: [String: String]
        public let problem: String?
    }

    /// The members of the tar or zip archive at `url` and where each lies: a tar archive's from its headers, read as
    /// the archive streams past (member data is not kept); a zip archive's from its central directory, read with
    /// range requests (the file's end, then what the end did not hold of the directory), the later ones asked of
    /// the file the first came from (its ETag or modification time, where the server gives one). A URL whose path
    /// ends in .zip is read as a zip archive; any other is streamed, and a zip found by its first bytes is read as
    /// one from there.
    ///
    /// - Throws: `ImageSourceError` when the archive cannot be fetched, or a zip archive's directory cannot be read;
    ///   a damaged or cut tar archive is the listing's `problem`, with the members before it.
    public func members(ofRemoteArchive url: String) throws -> RemoteListing {
        let path = url.prefix { $0 != "?" && $0 != "#" }
        if path.lowercased().hasSuffix(".zip") { return try zipMembers(ofRemoteArchive: url) }
        var stream = TarStream()
        var start: [UInt8] = []
        var zip = false
        try http.stream(url) { piece in
            if start.count < 4 {
                start += piece.prefix(4 - start.count)
                if start.count == 4 && Self.isZip(start) {
                    zip = true
                    return false
                }
            }
            stream.consume(piece)
            return !stream.ended
        }
        if zip { return try zipMembers(ofRemoteArchive: url) }
        let index = TarIndex(stream.finished())
        var uris: [String: String] = [:]
        for (member, data) in index.members {
            uris[member] = ImageLocation.memberURI(url: url, member: member, data: data)
        }
        return RemoteListing(names: index.names, uris: uris, problem: index.problem)
    }

    private func zipMembers(ofRemoteArchive url: String) throws -> RemoteListing {
        let (tail, size, validators) = try http.fetchTail(url, count: ZipDirectory.tailBytes)
        let entries: [ZipDirectory.Entry]
        do {
            entries = try ZipDirectory.entries(file: url, size: size) { range in
                let tailStart = size - tail.count
                if range.lowerBound >= tailStart {
                    return Array(tail[(range.lowerBound - tailStart)..<(range.upperBound - tailStart)])
                }
                return try http.fetch(url, range: range, condition: validators)
            }
        } catch let TensorError.badHeader(_, reason) {
            throw ImageSourceError(source: url, reason: reason)
        }
        var names: [String] = []
        var uris: [String: String] = [:]
        for entry in entries where !entry.name.hasSuffix("/") {
            let place = RemoteZipEntry(
                header: entry.localHeader, packedSize: entry.packedSize, size: entry.uncompressedSize,
                crc32: entry.crc32)
            if uris[entry.name] == nil { names.append(entry.name) }
            uris[entry.name] = ImageLocation.memberURI(url: url, member: entry.name, entry: place)
        }
        return RemoteListing(names: names, uris: uris, problem: nil)
    }

    /// Whether `start` begins a zip archive: a member's local header, or the end record of an empty archive.
    static func isZip(_ start: some Collection<UInt8>) -> Bool {
        start.starts(with: [0x50, 0x4B, 0x03, 0x04]) || start.starts(with: [0x50, 0x4B, 0x05, 0x06])
    }

    /// Refuses a remote archive that cannot be read in place: not found, not a tar or zip archive (a compressed tar
    /// archive is named), or served without byte ranges. Reads its first header with a range request (an empty
    /// file, or one of only zeros, is an empty archive, as a local one is).
    public func checkRemoteArchive(_ url: String) throws {
        let start = try http.fetch(url, range: 0..<512, exact: false)
        let problem: String? = start.withUnsafeBytes { bytes in
            if bytes.allSatisfy({ $0 == 0 }) || Self.isZip(bytes) { return nil }  // empty, or a zip archive
            if let compressed = TarIndex.compressed(bytes) { return compressed }
            return TarIndex.isHeader(bytes)
                ? nil : "not a tar or zip archive (no tar header or zip signature at its start)"
        }
        if let problem { throw ImageSourceError(source: url, reason: problem) }
    }

    /// How many archives' indexes are kept at once; an archive beyond them is indexed again when read again.
    public var archivesKept: Int { archives.capacity }

    /// The regular members of an archive, in archive order, and why listing stopped early, if it did.
    public func members(ofArchive path: String) throws -> (names: [String], problem: String?) {
        try archives.members(of: path)
    }
}
