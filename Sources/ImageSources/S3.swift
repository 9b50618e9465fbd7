// Objects in S3 and S3-compatible stores (MinIO, Cloudflare R2, Ceph, GCS's interoperability mode), named
// `s3://bucket/key`: each request goes to the bucket's HTTPS endpoint, signed with AWS Signature Version 4 when
// credentials are set (the AWS CLI's environment variables), unsigned for public buckets otherwise.

import CDigest
import Foundation

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
    /// AWS_DEFAULT_REGION, else us-east-1), AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL).
    public init(environment: [String: String]) {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            accessKey: value("AWS_ACCESS_KEY_ID"), secretKey: value("AWS_SECRET_ACCESS_KEY"),
            sessionToken: value("AWS_SESSION_TOKEN"),
            region: value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1",
            endpoint: value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL"))
    }

    /// Whether requests are signed: both keys are set.
    public var signs: Bool { accessKey != nil && secretKey != nil }
}

/// A GET of an S3 object: its HTTP(S) URL and the headers that sign it.
struct S3Request: Equatable {
    let url: String
    let headers: [String]

    /// Whether `url` names an S3 object (`s3://`, in any case).
    static func isS3(_ url: some StringProtocol) -> Bool { url.prefix(5).lowercased() == "s3://" }

    /// The request for `s3URL` (`s3://bucket/key`) at `date`, signed with `settings`' credentials when it has them.
    ///
    /// - Throws: `ImageSourceError` for a URL without a bucket or a key.
    init(_ s3URL: String, settings: S3Settings, date: Date = Date()) throws {
        let rest = s3URL.dropFirst(5)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex
        else { throw ImageSourceError(source: s3URL, reason: "an S3 URL is s3://bucket/key") }
        let bucket = String(rest[..<slash]), key = String(rest[rest.index(after: slash)...])
        let path: String, host: String, base: String
        if let endpoint = settings.endpoint {
            let trimmed = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            guard let components = URLComponents(string: trimmed), let name = components.host else {
                throw ImageSourceError(source: s3URL, reason: "the S3 endpoint \(endpoint) is not a URL")
            }
            host = name + (components.port.map { ":\($0)" } ?? "")
            path = "/" + Self.encode(bucket) + "/" + Self.encode(key)
            base = (components.scheme ?? "https") + "://" + host
        } else if bucket.contains(".") {
            host = "s3.\(settings.region).amazonaws.com"
            path = "/" + Self.encode(bucket) + "/" + Self.encode(key)
            base = "https://" + host
        } else {
            host = "\(bucket).s3.\(settings.region).amazonaws.com"
            path = "/" + Self.encode(key)
            base = "https://" + host
        }
        url = base + path
        guard settings.signs, let accessKey = settings.accessKey, let secretKey = settings.secretKey else {
            headers = []
            return
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let stamp = formatter.string(from: date), day = String(stamp.prefix(8))
        // A GET carries no body: the hash of the empty payload is signed (every S3-compatible store takes it).
        let payload = Self.hex(Self.sha256([]))
        var signed: [(String, String)] = [("host", host), ("x-amz-content-sha256", payload), ("x-amz-date", stamp)]
        if let token = settings.sessionToken { signed.append(("x-amz-security-token", token)) }
        let names = signed.map(\.0).joined(separator: ";")
        let canonical = [
            "GET", path, "", signed.map { "\($0.0):\($0.1)\n" }.joined(), names, payload,
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

    /// `text` percent-encoded as SigV4 wants a path (every byte but letters, digits, `-._~` and, in keys, `/`); S3
    /// paths are encoded once, in the URL and the signature alike.
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "/"):
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
