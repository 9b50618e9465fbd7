// The parts of an `amqp://user:password@host:port/vhost` or `amqps://...` URL, as RabbitMQ's URI spec defines them,
// with its TLS query parameters.

#if canImport(Glibc)
    import Glibc
#endif

/// Where and as whom to connect to RabbitMQ, and over TLS how to check the broker and who we are.
public struct AMQPURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String
    /// `amqps://`: TLS, the broker's certificate checked against `caCertificate` (or the system's CAs) and the host.
    public var tls: Bool
    /// PEM files: the CA that signed the broker's certificate, and this client's certificate and key (for brokers
    /// that ask for one).
    public var caCertificate: String?
    public var certificate: String?
    public var key: String?
    /// Whether the broker's certificate and host name are verified (`verify=verify_none` turns it off).
    public var verifyPeer: Bool

    /// Parses `amqp[s]://[user[:password]@]host[:port][/vhost][?cacertfile=..&certfile=..&keyfile=..&verify=..]`.
    ///
    /// Missing parts take the AMQP defaults: guest/guest, port 5672 (5671 with TLS), and virtual host `/`. The path
    /// is the percent-decoded virtual host, so `/%2f` and an absent path both mean `/`, and `/jobs` means `jobs`.
    /// The query takes RabbitMQ's TLS parameter names.
    public init(_ url: String) throws {
        let lower = url.lowercased()
        guard lower.hasPrefix("amqp://") || lower.hasPrefix("amqps://") else {
            throw AMQPError.invalidURL(url, reason: "use amqp:// or amqps://")
        }
        tls = lower.hasPrefix("amqps://")
        verifyPeer = true
        var rest = Substring(url.dropFirst(tls ? "amqps://".count : "amqp://".count))
        // The query starts after the user information, so a `?` in a password does not begin it.
        let afterCredentials = rest.lastIndex(of: "@").map { rest.index(after: $0) } ?? rest.startIndex
        if let question = rest[afterCredentials...].firstIndex(of: "?") {
            for pair in rest[rest.index(after: question)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = parts.count > 1 ? try Self.percentDecoded(parts[1], in: url) : ""
                switch parts[0] {
                case "cacertfile": caCertificate = value
                case "certfile": certificate = value
                case "keyfile": key = value
                case "verify":
                    guard value == "verify_peer" || value == "verify_none" else {
                        throw AMQPError.invalidURL(url, reason: "verify is verify_peer or verify_none")
                    }
                    verifyPeer = value == "verify_peer"
                default:
                    throw AMQPError.invalidURL(
                        url, reason: "an unknown parameter (use cacertfile, certfile, keyfile, verify)")
                }
            }
            guard tls || (caCertificate == nil && certificate == nil && key == nil) else {
                throw AMQPError.invalidURL(url, reason: "TLS files need an amqps:// URL")
            }
            guard (certificate == nil) == (key == nil) else {
                throw AMQPError.invalidURL(url, reason: "certfile and keyfile go together")
            }
            rest = rest[..<question]
        }
        if tls && caCertificate == nil {
            // librabbitmq does not load the system's CAs by itself: Debian's bundle stands in for them.
            let bundle = "/etc/ssl/certs/ca-certificates.crt"
            if access(bundle, R_OK) == 0 { caCertificate = bundle }
        }
        var path: Substring?
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        user = "guest"
        password = "guest"
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            user = try Self.percentDecoded(parts[0], in: url)
            password = parts.count > 1 ? try Self.percentDecoded(parts[1], in: url) : ""
        }
        port = tls ? 5671 : 5672
        if let colon = rest.lastIndex(of: ":") {
            guard let number = Int(rest[rest.index(after: colon)...]), (1...65535).contains(number) else {
                throw AMQPError.invalidURL(url, reason: "the port must be a number from 1 to 65535")
            }
            port = number
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw AMQPError.invalidURL(url, reason: "no host") }
        host = String(rest)
        if let path, !path.isEmpty {
            virtualHost = try Self.percentDecoded(path, in: url)
        } else {
            virtualHost = "/"
        }
    }

    /// The URL with the password hidden, for messages and logs.
    public var description: String {
        let vhost = virtualHost == "/" ? "%2f" : virtualHost
        return "\(tls ? "amqps" : "amqp")://\(user):***@\(host):\(port)/\(vhost)"
    }

    private static func percentDecoded(_ text: Substring, in url: String) throws -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw AMQPError.invalidURL(url, reason: "a % must be followed by two hex digits")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw AMQPError.invalidURL(url, reason: "percent-decoding gives invalid UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
