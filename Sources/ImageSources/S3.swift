// Objects in S3 and S3-compatible stores (MinIO, Cloudflare R2, Ceph, GCS's interoperability mode), named
// `s3://bucket/key`: each request goes to the bucket's HTTPS endpoint, signed with AWS Signature Version 4 when
// credentials are set (the AWS CLI's environment variables), unsigned for public buckets otherwise.

import CDigest
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where S3 objects are read from, and as whom.
public struct S3Settings: Sendable, Equatable {
    public var accessKey: String?
    public var secretKey: String?
    public var sessionToken: String?
    public var region: String
    /// A store of another kind than AWS (`http://minio:9000`): objects at `ENDPOINT/bucket/key` (path style).
    /// Without it, AWS's `https://BUCKET.s3.REGION.amazonaws.com/key` (path style for bucket names with dots).
    public var endpoint: String?

    public init(
        accessKey: String? = nil, secretKey: String? = nil, sessionToken: String? = nil, region: String = "us-east-1",
        endpoint: String? = nil
    ) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.region = region
        self.endpoint = endpoint
    }

    /// The AWS CLI's variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (else
    /// AWS_DEFAULT_REGION, else us-east-1), AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL); values trimmed of spaces and
    /// line ends (an env file written on Windows). Profiles, `~/.aws` files and instance roles are not read.
    public init(environment: [String: String]) {
        func value(_ name: String) -> String? {
            environment[name].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap {
                $0.isEmpty ? nil : $0
            }
        }
        self.init(
            accessKey: value("AWS_ACCESS_KEY_ID"), secretKey: value("AWS_SECRET_ACCESS_KEY"),
            sessionToken: value("AWS_SESSION_TOKEN"),
            region: value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1",
            endpoint: value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL"))
    }

    /// Whether requests are signed: both keys are set.
    public var signs: Bool { accessKey != nil && secretKey != nil }

    /// What is wrong with these settings, for a command to refuse at its start rather than fail every object: one
    /// key without the other, a control character in a credential or the region (it would go into a header), or
    /// an endpoint that is not an http(s) URL of a host (and a path), without user, query or fragment.
    public var problem: String? {
        if (accessKey == nil) != (secretKey == nil) {
            return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both, or neither for public buckets"
        }
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", accessKey), ("AWS_SECRET_ACCESS_KEY", secretKey),
            ("AWS_SESSION_TOKEN", sessionToken), ("AWS_REGION", region),
        ] where value?.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) == true {
            return "\(name) holds a control character"
        }
        if let endpoint {
            guard let components = URLComponents(string: endpoint), ["http", "https"].contains(components.scheme),
                components.host?.isEmpty == false, components.user == nil, components.password == nil,
                components.query == nil, components.fragment == nil
            else { return "the S3 endpoint \(endpoint) is not an http(s) URL of a host" }
        }
        return nil
    }
}

/// A GET of an S3 object: its HTTP(S) URL and the headers that sign it.
struct S3Request: Equatable {
    let url: String
    let headers: [String]

    /// The request for `s3URL` (`s3://bucket/key`) at `date`, signed with `settings`' credentials when it has them;
    /// with `query`, a request of the bucket itself (`s3://bucket/`, a listing).
    ///
    /// - Throws: `ImageSourceError` for a URL without a bucket or a key.
    init(_ s3URL: String, query: [(String, String)] = [], settings: S3Settings, date: Date = Date()) throws {
        let rest = s3URL.dropFirst(5)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex,
            rest.index(after: slash) != rest.endIndex || !query.isEmpty
        else { throw ImageSourceError(source: s3URL, reason: "an S3 URL is s3://bucket/key") }
        let bucket = String(rest[..<slash]), key = String(rest[rest.index(after: slash)...])
        // Bucket names are letters, digits, dots, hyphens and (in old buckets) underscores: nothing that could end
        // a host name or start a path, a query or a fragment.
        guard bucket.utf8.count <= 255,
            bucket.unicodeScalars.allSatisfy({
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ".-_".unicodeScalars.contains($0))
            })
        else { throw ImageSourceError(source: s3URL, reason: "\(bucket) is not an S3 bucket name") }
        let path: String, host: String, base: String
        if let endpoint = settings.endpoint {
            if let problem = settings.problem { throw ImageSourceError(source: s3URL, reason: problem) }
            guard let components = URLComponents(string: endpoint), let name = components.host,
                let scheme = components.scheme
            else { throw ImageSourceError(source: s3URL, reason: "the S3 endpoint \(endpoint) is not a URL") }
            // A default port is not part of the host the request is signed for (curl leaves it out of Host).
            let port = components.port.flatMap {
                ($0 == 80 && scheme == "http") || ($0 == 443 && scheme == "https") ? nil : $0
            }
            let hostName = name.contains(":") ? "[\(name)]" : name
            host = hostName + (port.map { ":\($0)" } ?? "")
            // An endpoint's path (a store behind a proxy, `http://gateway/s3`) comes before the bucket's.
            var prefix = components.percentEncodedPath
            while prefix.hasSuffix("/") { prefix.removeLast() }
            path = prefix + "/" + Self.encode(bucket) + "/" + Self.encode(key)
            base = scheme + "://" + hostName + (components.port.map { ":\($0)" } ?? "")
        } else if bucket.contains(".") || bucket.contains("_") || bucket != bucket.lowercased() {
            host = "s3.\(settings.region).amazonaws.com"
            path = "/" + Self.encode(bucket) + "/" + Self.encode(key)
            base = "https://" + host
        } else {
            host = "\(bucket).s3.\(settings.region).amazonaws.com"
            path = "/" + Self.encode(key)
            base = "https://" + host
        }
        // The query, its names and values escaped (slashes too) and sorted, as the signature has it.
        let encoded: [(name: String, value: String)] = query.map {
            (Self.encode($0.0, slash: false), Self.encode($0.1, slash: false))
        }
        let sorted = encoded.sorted { $0.name != $1.name ? $0.name < $1.name : $0.value < $1.value }
        let canonicalQuery = sorted.map { $0.name + "=" + $0.value }.joined(separator: "&")
        url = base + path + (canonicalQuery.isEmpty ? "" : "?" + canonicalQuery)
        guard settings.signs, let accessKey = settings.accessKey, let secretKey = settings.secretKey else {
            headers = []
            return
        }
        let stamp = Self.stamp(date), day = String(stamp.prefix(8))
        // A GET carries no body: the hash of the empty payload is signed (every S3-compatible store takes it).
        let payload = Self.hex(Self.sha256([]))
        var signed: [(String, String)] = [("host", host), ("x-amz-content-sha256", payload), ("x-amz-date", stamp)]
        if let token = settings.sessionToken { signed.append(("x-amz-security-token", token)) }
        let names = signed.map(\.0).joined(separator: ";")
        let canonical = [
            "GET", path, canonicalQuery, signed.map { "\($0.0):\($0.1)\n" }.joined(), names, payload,
        ].joined(separator: "\n")
        let scope = "\(day)/\(settings.region)/s3/aws4_request"
        let toSign = ["AWS4-HMAC-SHA256", stamp, scope, Self.hex(Self.sha256(Array(canonical.utf8)))]
            .joined(separator: "\n")
        var signingKey = Self.hmac(Array(("AWS4" + secretKey).utf8), Array(day.utf8))
        for part in [settings.region, "s3", "aws4_request"] { signingKey = Self.hmac(signingKey, Array(part.utf8)) }
        let signature = Self.hex(Self.hmac(signingKey, Array(toSign.utf8)))
        headers =
            signed.dropFirst().map { "\($0.0): \($0.1)" } + [
                "Authorization: AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(names), "
                    + "Signature=\(signature)"
            ]
    }

    /// `date` as SigV4 writes it, `yyyyMMddTHHmmssZ` in UTC.
    static func stamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// `text` percent-encoded as SigV4 wants a path (every byte but letters, digits, `-._~` and, in keys, `/`); S3
    /// paths are encoded once, in the URL and the signature alike.
    static func encode(_ text: String, slash: Bool = true) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where slash:
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var context = cd_sha256()
        cd_sha256_init(&context)
        bytes.withUnsafeBufferPointer { if let base = $0.baseAddress { cd_sha256_update(&context, base, $0.count) } }
        var digest = [UInt8](repeating: 0, count: 32)
        digest.withUnsafeMutableBufferPointer { cd_sha256_final(&context, $0.baseAddress!) }
        return digest
    }

    /// HMAC-SHA256 (RFC 2104) of `message` under `key`.
    static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var block = key.count > 64 ? sha256(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        let inner = sha256(block.map { $0 ^ 0x36 } + message)
        return sha256(block.map { $0 ^ 0x5C } + inner)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
