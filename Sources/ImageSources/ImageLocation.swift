// Where a task's image lives, parsed from the URI stored in `tasks.image_uri`.
//
//   /data/photos/a.jpg, file:///data/photos/a.jpg      a local file (every worker needs the same mount)
//   http://host/a.jpg, https://bucket.example/a.jpg     fetched over HTTP(S) (public or pre-signed URLs)
//   s3://bucket/photos/a.jpg                            an S3 object (or an S3-compatible store's), signed with
//                                                       the worker's credentials (`S3Settings`)
//   tar:/data/shards/00042.tar!/images/0001.jpg         a member of a tar archive, read in place
//   zip:/data/batch.zip!/photos/b.png                   a member of a zip archive (stored or deflated)
//   tar:https://host/shards/00042.tar#offset=1536&size=24873!/images/0001.jpg
//                                                       a member of a tar archive served over HTTP(S), read with
//                                                       one range request (the header before it is checked)
//   zip:https://host/batch.zip#header=4096&packed=24001&size=24873&crc=1c291ca3!/photos/b.jpg
//                                                       a member of a zip archive served over HTTP(S), read with
//                                                       one range request of its local header and data
//
// Archive URIs name the archive by its absolute path or URL, then `!/`, then the member's path inside it (as `jar:`
// URIs do); the first `!/` splits them. A remote archive's URL carries where the member's data lies, as `enqueue
// --archive URL` found it when it read the archive's headers (a zip's central directory), so that a worker reads
// just those bytes.

/// A parsed image URI.
public enum ImageLocation: Sendable, Equatable {
    case file(path: String)
    /// A URL the fetcher reads: http://, https:// or s3://.
    case http(url: String)
    case tarMember(archive: String, member: String)
    case zipMember(archive: String, member: String)
    /// A member of the tar archive at `url`, whose data is `data` (offsets in the archive; its header is the 512
    /// bytes before).
    case remoteTarMember(url: String, member: String, data: Range<Int>)
    /// A member of the zip archive at `url`, as its central directory described it.
    case remoteZipMember(url: String, member: String, entry: RemoteZipEntry)

    /// Parses `uri`; relative paths are refused (enqueue stores absolute ones).
    public init(_ uri: String) throws {
        func refuse(_ reason: String) -> ImageSourceError { ImageSourceError(source: uri, reason: reason) }
        let lower = uri.lowercased()
        if Self.isURL(uri) {
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
            guard !member.isEmpty else { throw refuse("no member after !/") }
            if Self.isURL(archive) {
                self = try Self.remoteMember(archive, member: member, zip: lower.hasPrefix("zip:"), uri: uri)
                return
            }
            guard archive.hasPrefix("/") else { throw refuse("the archive path must be absolute") }
            self =
                lower.hasPrefix("tar:")
                ? .tarMember(archive: archive, member: member)
                : .zipMember(archive: archive, member: member)
        } else if uri.hasPrefix("/") {
            self = .file(path: uri)
        } else if let colon = uri.firstIndex(of: ":"), let first = uri.first, first.isLetter,
            uri[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) })
        {
            throw refuse(
                "the scheme \(uri[..<colon]) is not supported (use a path, file://, http(s)://, s3://, tar: or zip:)")
        } else {
            throw refuse("not an absolute path or URI")
        }
    }

    /// The URI of a member of `archive` (a tar or zip file, chosen by its name).
    public static func memberURI(archive: String, member: String) -> String {
        let lower = archive.lowercased()
        return (lower.hasSuffix(".zip") ? "zip:" : "tar:") + archive + "!/" + member
    }

    /// The URI of a member of the tar archive at `url` whose data is `data`.
    public static func memberURI(url: String, member: String, data: Range<Int>) -> String {
        "tar:\(url)#offset=\(data.lowerBound)&size=\(data.count)!/\(member)"
    }

    /// The URI of a member of the zip archive at `url` described by `entry`.
    public static func memberURI(url: String, member: String, entry: RemoteZipEntry) -> String {
        let crc = String(entry.crc32, radix: 16)
        return "zip:\(url)#header=\(entry.header)&packed=\(entry.packedSize)&size=\(entry.size)&crc=\(crc)!/\(member)"
    }

    /// `tar:URL#offset=N&size=N!/member` or `zip:URL#header=N&packed=N&size=N&crc=HEX!/member`, split.
    private static func remoteMember(_ archive: String, member: String, zip: Bool, uri: String) throws -> ImageLocation
    {
        let form =
            zip
            ? "zip:URL#header=START&packed=BYTES&size=BYTES&crc=HEX!/member" : "tar:URL#offset=START&size=BYTES!/member"
        let kind = zip ? "zip" : "tar"
        guard let hash = archive.lastIndex(of: "#") else {
            throw ImageSourceError(
                source: uri,
                reason: "a member of a remote \(kind) archive needs where its bytes lie: \(form), as enqueue --archive "
                    + "URL lists it")
        }
        var fields: [Substring: Int] = [:]
        for field in archive[archive.index(after: hash)...].split(separator: "&") {
            let parts = field.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1], radix: parts[0] == "crc" ? 16 : 10), value >= 0 else {
                continue
            }
            fields[parts[0]] = value
        }
        let url = String(archive[..<hash])
        if zip {
            guard let header = fields["header"], let packed = fields["packed"], let size = fields["size"],
                let crc = fields["crc"], crc <= Int(UInt32.max), packed <= Int.max / 2 - header, size <= Int.max / 2
            else {
                throw ImageSourceError(
                    source: uri, reason: "the member's place, sizes and CRC are not a zip member's: \(form)")
            }
            return .remoteZipMember(
                url: url, member: member,
                entry: RemoteZipEntry(header: header, packedSize: packed, size: size, crc32: UInt32(crc)))
        }
        guard let start = fields["offset"], let size = fields["size"], start >= 512, start % 512 == 0,
            size <= Int.max / 2 - start
        else {
            throw ImageSourceError(source: uri, reason: "the member's offset and size are not a tar member's: \(form)")
        }
        return .remoteTarMember(url: url, member: member, data: start..<(start + size))
    }

    /// Whether `uri` carries a scheme this reader understands (not a path to resolve).
    public static func hasScheme(_ uri: String) -> Bool {
        let lower = uri.lowercased()
        return ["http://", "https://", "s3://", "file://", "tar:", "zip:"].contains { lower.hasPrefix($0) }
    }

    /// For an archive member: the archive (its path or URL) and the member's name.
    public var archiveMember: (archive: String, member: String)? {
        switch self {
        case let .tarMember(archive, member), let .zipMember(archive, member),
            let .remoteTarMember(archive, member, _), let .remoteZipMember(archive, member, _):
            (archive, member)
        case .file, .http: nil
        }
    }

    /// Whether `text` is a URL the fetcher reads: http://, https:// or s3:// (the scheme in any case).
    public static func isURL(_ text: some StringProtocol) -> Bool {
        let scheme = text.prefix(8).lowercased()
        return scheme.hasPrefix("http://") || scheme.hasPrefix("https://") || isS3(text)
    }

    /// Whether `text` names an S3 object or prefix (`s3://`, in any case).
    public static func isS3(_ text: some StringProtocol) -> Bool { text.prefix(5).lowercased() == "s3://" }

    /// For a member's `uri`, its archive's part as stored, up to and with the `!/` (`tar:/d/a.tar!/`;
    /// `tar:https://h/a.tar!/`, without where the member lies): the same for every member of one archive.
    public static func archivePart(of uri: String) -> String? {
        guard let split = uri.range(of: "!/") else { return nil }
        let archive = uri[..<split.lowerBound]
        if isURL(archive.dropFirst(4)), let hash = archive.lastIndex(of: "#") {
            return archive[..<hash] + "!/"
        }
        return String(uri[..<split.upperBound])
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
