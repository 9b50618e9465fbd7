// One way in for image bytes, whatever the URI: local files, HTTP(S), and members of tar and zip archives.

import Foundation

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
        case .http, .remoteTarMember: true
        default: false
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

    /// The regular members of the tar archive at `url` and where their data lies, from its headers, read as the
    /// archive streams past (member data is not kept).
    ///
    /// - Throws: `ImageSourceError` when the archive cannot be fetched; a damaged or cut archive is the index's
    ///   `problem`, with the members before it.
    public func members(ofRemoteArchive url: String) throws -> TarIndex {
        var stream = TarStream()
        try http.stream(url) { piece in
            stream.consume(piece)
            return !stream.ended
        }
        return TarIndex(stream.finished())
    }

    /// Refuses a remote archive that cannot be read in place: not found, not a tar archive (a compressed one is
    /// named), or served without byte ranges. Reads its first header with a range request (an empty file, or one
    /// of only zeros, is an empty archive, as a local one is).
    public func checkRemoteArchive(_ url: String) throws {
        let start = try http.fetch(url, range: 0..<512, exact: false)
        let problem: String? = start.withUnsafeBytes { bytes in
            if bytes.allSatisfy({ $0 == 0 }) { return nil }  // an empty archive
            if let compressed = TarIndex.compressed(bytes) { return compressed }
            return TarIndex.isHeader(bytes) ? nil : "not a tar archive (no tar header at its start)"
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
