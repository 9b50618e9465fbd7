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
        if case .http = try? ImageLocation(uri) { return true }
        return false
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
        }
    }

    /// How many archives' indexes are kept at once; an archive beyond them is indexed again when read again.
    public var archivesKept: Int { archives.capacity }

    /// The regular members of an archive, in archive order, and why listing stopped early, if it did.
    public func members(ofArchive path: String) throws -> (names: [String], problem: String?) {
        try archives.members(of: path)
    }
}
