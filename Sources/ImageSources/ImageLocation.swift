// Where a task's image lives, parsed from the URI stored in `tasks.image_uri`.
//
//   /data/photos/a.jpg, file:///data/photos/a.jpg      a local file (every worker needs the same mount)
//   http://host/a.jpg, https://bucket.example/a.jpg     fetched over HTTP(S) (public or pre-signed URLs)
//   tar:/data/shards/00042.tar!/images/0001.jpg         a member of a tar archive, read in place
//   zip:/data/batch.zip!/photos/b.png                   a member of a zip archive (stored or deflated)
//
// Archive URIs name the archive by its absolute path, then `!/`, then the member's path inside it (as `jar:` URIs
// do); the first `!/` splits them.

/// A parsed image URI.
public enum ImageLocation: Sendable, Equatable {
    case file(path: String)
    case http(url: String)
    case tarMember(archive: String, member: String)
    case zipMember(archive: String, member: String)

    /// Parses `uri`; relative paths are refused (enqueue stores absolute ones).
    public init(_ uri: String) throws {
        func refuse(_ reason: String) -> ImageSourceError { ImageSourceError(source: uri, reason: reason) }
        let lower = uri.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            self = .http(url: uri)
        } else if lower.hasPrefix("file://") {
            let path = String(uri.dropFirst("file://".count))
            guard path.hasPrefix("/") else { throw refuse("a file:// URI needs an absolute path (file:///...)") }
            self = .file(path: path.removingPercentEncodingIfValid)
        } else if lower.hasPrefix("tar:") || lower.hasPrefix("zip:") {
            let rest = String(uri.dropFirst(4))
            guard let split = rest.range(of: "!/") else {
                throw refuse("an archive URI is \(lower.prefix(3)):/path/to/archive!/member/path")
            }
            let archive = String(rest[..<split.lowerBound]), member = String(rest[split.upperBound...])
            guard archive.hasPrefix("/") else { throw refuse("the archive path must be absolute") }
            guard !member.isEmpty else { throw refuse("no member after !/") }
            self =
                lower.hasPrefix("tar:")
                ? .tarMember(archive: archive, member: member)
                : .zipMember(archive: archive, member: member)
        } else if uri.hasPrefix("/") {
            self = .file(path: uri)
        } else if let colon = uri.firstIndex(of: ":"), let first = uri.first, first.isLetter,
            uri[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) })
        {
            throw refuse("the scheme \(uri[..<colon]) is not supported (use a path, file://, http(s)://, tar: or zip:)")
        } else {
            throw refuse("not an absolute path or URI")
        }
    }

    /// The URI of a member of `archive` (a tar or zip file, chosen by its name).
    public static func memberURI(archive: String, member: String) -> String {
        let lower = archive.lowercased()
        return (lower.hasSuffix(".zip") ? "zip:" : "tar:") + archive + "!/" + member
    }

    /// Whether `uri` carries a scheme this reader understands (not a path to resolve).
    public static func hasScheme(_ uri: String) -> Bool {
        let lower = uri.lowercased()
        return ["http://", "https://", "file://", "tar:", "zip:"].contains { lower.hasPrefix($0) }
    }

    /// Where the bytes are, for messages.
    public var archivePath: String? {
        switch self {
        case let .tarMember(archive, _), let .zipMember(archive, _): archive
        case .file, .http: nil
        }
    }
}

extension String {
    /// Percent-decoded when the escapes form valid UTF-8, unchanged otherwise.
    fileprivate var removingPercentEncodingIfValid: String {
        guard contains("%") else { return self }
        let all = Array(utf8)
        var bytes: [UInt8] = []
        var position = 0
        while position < all.count {
            if all[position] == UInt8(ascii: "%"), position + 2 < all.count,
                all[(position + 1)...(position + 2)].allSatisfy({ $0.isHexDigit }),
                let value = UInt8(String(decoding: all[(position + 1)...(position + 2)], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                position += 3
            } else {
                bytes.append(all[position])
                position += 1
            }
        }
        return String(validating: bytes, as: UTF8.self) ?? self
    }
}

extension UInt8 {
    /// 0-9, a-f or A-F (`UInt8(_:radix:)` also takes a sign, which a percent escape never has).
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
