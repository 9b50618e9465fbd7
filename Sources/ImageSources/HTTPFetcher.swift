// Images over HTTP(S) through libcurl: connections kept and reused between fetches, a time limit per attempt, a size
// limit enforced while the body arrives, redirects followed up to a bound (to http and https only), and transient
// failures (timeouts, refused or dropped connections, 5xx, 408, 429) retried with exponential backoff, honouring
// Retry-After. Other 4xx answers and bodies over the limit fail at once. Besides whole bodies: byte ranges (an archive
// member read in place, refused where the server answers with the whole file) and streams of any length (an
// archive's headers read as it arrives), resumed where they stopped.

import CCurl
import Foundation

/// How images are fetched over HTTP(S).
public struct FetchSettings: Sendable {
    /// Seconds one attempt may take, connection and body included.
    public var timeout: Double
    /// Attempts in all, for transient failures.
    public var attempts: Int
    /// Redirects followed before giving up.
    public var maxRedirects: Int
    /// Seconds before the second attempt; doubled each time after.
    public var backoff: Double
    /// The longest Retry-After honoured, in seconds.
    public var maxRetryAfter: Double
    /// Whether URLs may reach loopback, private, link-local, CGNAT, multicast and other non-public addresses. When
    /// false, the address of every connection (each redirect's included) is checked as it is opened, so a name
    /// that resolves differently later cannot slip past, and a refused one sends no request.
    public var allowPrivateAddresses: Bool
    /// Where `s3://` URLs lead, and the credentials that sign their requests.
    public var s3: S3Settings

    public init(
        timeout: Double = 60, attempts: Int = 4, maxRedirects: Int = 5, backoff: Double = 0.5,
        maxRetryAfter: Double = 60, allowPrivateAddresses: Bool = false, s3: S3Settings = S3Settings()
    ) {
        self.allowPrivateAddresses = allowPrivateAddresses
        self.s3 = s3
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.maxRedirects = maxRedirects
        self.backoff = backoff
        self.maxRetryAfter = maxRetryAfter
    }
}

/// Fetches URLs with a pool of reusable libcurl handles. Thread-safe: each fetch takes a handle of its own.
final class HTTPFetcher: @unchecked Sendable {
    let settings: FetchSettings
    // Invariant: `idle` is only read and written while holding `lock`; a handle is used by one fetch at a time.
    private let lock = NSLock()
    private var idle: [UnsafeMutableRawPointer] = []
    private static let initialised: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    init(settings: FetchSettings) {
        self.settings = settings
        _ = Self.initialised
    }

    deinit {
        for handle in idle { curl_easy_cleanup(handle) }
    }

    private enum Outcome {
        case body([UInt8])
        case transient(String, retryAfter: Double?)
        case permanent(String)
    }

    /// The body of `url`, at most `limit` bytes, after up to `settings.attempts` attempts.
    func fetch(_ url: String, limit: Int) throws -> [UInt8] {
        try withHandle(url) { handle in
            try attempts(url) { perform(handle, url: url, sink: Sink(limit: limit)) }
        }
    }

    /// The bytes `range` of `url`, asked for with a range request, after up to `settings.attempts` attempts. A
    /// server that answers with the whole file (it serves no ranges) fails at once, and so does one that answers
    /// with fewer bytes unless `exact` is false (then a file that ends in the range, or before it, gives what it has,
    /// and a file no longer than the range may come whole).
    /// With `condition`, the file must be the one those validators came from (HTTP 412 otherwise).
    func fetch(_ url: String, range: Range<Int>, exact: Bool = true, condition: Validators? = nil) throws -> [UInt8] {
        guard !range.isEmpty else { return [] }
        return try withHandle(url) { handle in
            try attempts(url) {
                let sink = Sink(limit: range.count, ranged: true, acceptsWhole: !exact && range.lowerBound == 0)
                let outcome = perform(
                    handle, url: url, range: "\(range.lowerBound)-\(range.upperBound - 1)", condition: condition,
                    sink: sink)
                if !exact, case let .permanent(reason) = outcome, reason.hasPrefix("HTTP 416") { return .body([]) }
                if exact, case let .body(bytes) = outcome, bytes.count != range.count {
                    return .permanent(
                        "the server answered \(bytes.count) of the \(range.count) bytes asked for (bytes "
                            + "\(range.lowerBound)-\(range.upperBound - 1)): the file is shorter")
                }
                return outcome
            }
        }
    }

    /// The last `count` bytes of `url` (all of it, when shorter), the file's size and what tells this version of it
    /// from another, asked for with a suffix range request; a server that serves no ranges is refused as `fetch`'s
    /// range requests are.
    func fetchTail(_ url: String, count: Int) throws -> (bytes: [UInt8], size: Int, validators: Validators) {
        try withHandle(url) { handle in
            var size = 0
            var validators = Validators()
            let bytes = try attempts(url) {
                let sink = Sink(limit: count, ranged: true)
                let outcome = perform(handle, url: url, range: "-\(count)", sink: sink)
                guard case let .body(bytes) = outcome else { return outcome }
                guard let total = sink.contentRangeTotal, total >= bytes.count else {
                    return .permanent("the server's answer to a range request gave no file size (Content-Range)")
                }
                guard sink.contentRangeStart == total - bytes.count else {
                    return .permanent("the server answered a range request for the file's end with other bytes")
                }
                size = total
                validators = sink.validators
                return outcome
            }
            return (bytes, size, validators)
        }
    }

    /// Streams the body of `url` to `consume`, piece by piece, until it ends or `consume` returns false. A transfer
    /// cut short is resumed where it stopped (a range request; where the server serves no ranges, the body again
    /// with the bytes already read skipped), on condition that the file is the one the first answer came from (its
    /// ETag, or else its modification time); `settings.attempts` counts the attempts in a row that read nothing.
    func stream(_ url: String, _ consume: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        try withHandle(url) { handle in
            var received = 0
            var stalled = 0
            // What the first answer said of the file, asked of every resumed one: the same file, or HTTP 412.
            var validators = Validators()
            while true {
                let start = received
                var skip = 0
                let sink = Sink(limit: Int.max) { piece, status in
                    if status == 200 && start > 0 && skip < start {  // the whole body again: skip what was read
                        let skipped = min(start - skip, piece.count)
                        skip += skipped
                        guard skipped < piece.count else { return true }
                        received += piece.count - skipped
                        return consume(UnsafeRawBufferPointer(rebasing: piece[skipped...]))
                    }
                    received += piece.count
                    return consume(piece)
                }
                let outcome = perform(
                    handle, url: url, range: start > 0 ? "\(start)-" : nil, condition: start > 0 ? validators : nil,
                    sink: sink)
                if start == 0 { validators = sink.validators }
                if start > 0, let resumedAt = sink.contentRangeStart, resumedAt != start {
                    throw ImageSourceError(
                        source: url, reason: "the server resumed at byte \(resumedAt), not at byte \(start) as asked")
                }
                switch outcome {
                case .body, .permanent(Sink.stoppedReason):
                    return
                case let .permanent(reason) where start > 0 && reason.hasPrefix("HTTP 416"):
                    return  // resumed at the very end: every byte had come
                case let .permanent(reason):
                    throw ImageSourceError(source: url, reason: reason)
                case let .transient(reason, retryAfter):
                    stalled = received > start ? 0 : stalled + 1
                    guard stalled < settings.attempts else {
                        throw ImageSourceError(
                            source: url, reason: "\(reason) (after \(settings.attempts) attempts without progress)",
                            isTransient: true)
                    }
                    Thread.sleep(
                        forTimeInterval: retryAfter.map { min($0, settings.maxRetryAfter) }
                            ?? settings.backoff * Double(1 << min(max(stalled - 1, 0), 10)))
                }
            }
        }
    }

    /// Runs `body` with a pooled handle.
    private func withHandle<T>(_ url: String, _ body: (UnsafeMutableRawPointer) throws -> T) throws -> T {
        guard let handle = lock.withLock({ idle.popLast() }) ?? curl_easy_init() else {
            throw ImageSourceError(source: url, reason: "libcurl could not start a transfer", isTransient: true)
        }
        defer { lock.withLock { idle.append(handle) } }
        return try body(handle)
    }

    /// The body of the first attempt that gives one, retrying transient failures with backoff.
    private func attempts(_ url: String, _ attempt: () -> Outcome) throws -> [UInt8] {
        var delay = settings.backoff
        var last = ""
        for number in 1...settings.attempts {
            switch attempt() {
            case let .body(bytes):
                return bytes
            case let .permanent(reason):
                throw ImageSourceError(source: url, reason: reason)
            case let .transient(reason, retryAfter):
                last = reason
                guard number < settings.attempts else { break }
                let wait = retryAfter.map { min($0, settings.maxRetryAfter) } ?? delay
                Thread.sleep(forTimeInterval: wait)
                delay *= 2
            }
        }
        throw ImageSourceError(
            source: url, reason: "\(last) (after \(settings.attempts) attempts)", isTransient: true)
    }

    /// Where a body goes: collected up to a limit, or handed on piece by piece (`consume`, with the answer's status,
    /// returning false to stop). Only a 2xx answer's body is kept or handed on.
    private final class Sink {
        static let stoppedReason = "stopped by the reader"
        /// The most of an error page read (and thrown away) before the transfer is cut.
        static let errorPageLimit = 64 << 10
        var bytes: [UInt8] = []
        let limit: Int
        /// Whether a range was asked for, so that a whole file (200) is refused, not read, unless `acceptsWhole`.
        let ranged: Bool
        let acceptsWhole: Bool
        let consume: ((UnsafeRawBufferPointer, Int) -> Bool)?
        var handle: UnsafeMutableRawPointer?
        var exceeded = false
        var stopped = false
        var errorPage = 0
        /// The start of the last answer's Content-Range and the file size it gives, and its ETag.
        var contentRangeStart: Int?
        var contentRangeTotal: Int?
        /// The region S3 says a bucket is in (x-amz-bucket-region), for an answer about the wrong one.
        var bucketRegion: String?
        var validators = Validators()
        /// The non-public address a connection was refused to, and its range.
        var refused: (address: String, range: String)?
        init(
            limit: Int, ranged: Bool = false, acceptsWhole: Bool = false,
            consume: ((UnsafeRawBufferPointer, Int) -> Bool)? = nil
        ) {
            self.limit = limit
            self.ranged = ranged
            self.acceptsWhole = acceptsWhole
            self.consume = consume
        }

        /// Reads a header line of an answer (each answer's start, a redirect's included, clears what was read).
        func header(_ line: UnsafeRawBufferPointer) {
            let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let lower = text.lowercased()
            if lower.hasPrefix("http/") {
                contentRangeStart = nil
                contentRangeTotal = nil
                bucketRegion = nil
                validators.etag = nil
            } else if lower.hasPrefix("content-range:") {
                // bytes START-END/LENGTH
                let value = lower.dropFirst("content-range:".count).trimmingCharacters(in: .whitespaces)
                contentRangeStart = value.hasPrefix("bytes ") ? Int(value.dropFirst(6).prefix { $0 != "-" }) : nil
                contentRangeTotal = value.split(separator: "/").last.flatMap { Int($0) }
            } else if lower.hasPrefix("x-amz-bucket-region:") {
                bucketRegion = text.dropFirst("x-amz-bucket-region:".count).trimmingCharacters(in: .whitespaces)
            } else if lower.hasPrefix("etag:") {
                let value = text.dropFirst("etag:".count).trimmingCharacters(in: .whitespaces)
                validators.etag = value.hasPrefix("W/") || value.isEmpty ? nil : value  // strong ETags only
            }
        }

        /// Takes a piece of the body; false aborts the transfer.
        func take(_ piece: UnsafeRawBufferPointer) -> Bool {
            var status = 0
            if let handle { _ = infmllm_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status) }
            guard (200..<300).contains(status) else {
                // An error page: not the body, and not read past a bound (its status tells what happened).
                errorPage += piece.count
                return errorPage <= Self.errorPageLimit
            }
            if ranged && status != 206 && !acceptsWhole { return false }  // the whole file: not read
            if let consume {
                stopped = !consume(piece, status)
                return !stopped
            }
            guard bytes.count + piece.count <= limit else {
                exceeded = true
                return false
            }
            bytes.append(contentsOf: piece)
            return true
        }
    }

    /// What tells one version of a file from another, as its server gave them.
    struct Validators {
        var etag: String?
        /// Its modification time (Last-Modified), in seconds since 1970.
        var modified: Int64?
    }

    /// The body of an S3 request of `url` with `query` (a bucket listing), at most `limit` bytes.
    func fetch(s3 url: String, query: [(String, String)], limit: Int) throws -> [UInt8] {
        try withHandle(url) { handle in
            try attempts(url) { perform(handle, url: url, s3Query: query, sink: Sink(limit: limit)) }
        }
    }

    private func perform(
        _ handle: UnsafeMutableRawPointer, url: String, range: String? = nil, condition: Validators? = nil,
        s3Query: [(String, String)] = [], sink: Sink
    ) -> Outcome {
        curl_easy_reset(handle)  // settings only: the connection cache stays
        sink.handle = handle
        // An S3 object: its endpoint's URL, and the headers that sign the request (made anew for each attempt).
        let s3 = ImageLocation.isS3(url)
        var target = url
        var lines: [String] = []
        if s3 {
            do {
                let request = try S3Request(url, query: s3Query, settings: settings.s3)
                target = request.url
                lines = request.headers
            } catch let error as ImageSourceError {
                return .permanent(error.reason)
            } catch {
                return .permanent("\(error)")
            }
        }
        if let etag = condition?.etag { lines.append("If-Match: \(etag)") }
        var headers: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headers) }
        for line in lines { headers = curl_slist_append(headers, line) }
        if headers != nil { _ = infmllm_curl_set_pointer(handle, CURLOPT_HTTPHEADER, headers) }
        if condition?.etag == nil, let modified = condition?.modified {
            _ = infmllm_curl_set_long(handle, CURLOPT_TIMECONDITION, Int(CURL_TIMECOND_IFUNMODSINCE.rawValue))
            _ = infmllm_curl_set_offset(handle, CURLOPT_TIMEVALUE_LARGE, curl_off_t(modified))
        }
        _ = infmllm_curl_set_long(handle, CURLOPT_FILETIME, 1)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        // At least 1: curl reads 0 as no limit at all.
        let milliseconds = max(1, Int((settings.timeout * 1000).rounded(.up)))
        _ = infmllm_curl_set_string(handle, CURLOPT_URL, target)
        _ = infmllm_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
        // A signed request is not sent on to wherever a redirect points (its headers would go with it); S3 answers
        // a wrong region with a 301 that names the right one, which the answer's status below reports.
        _ = infmllm_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, s3 ? 0 : 1)
        // An S3 key is sent as it was signed: curl would squash `a/../b` or `./` in it (another object, or a path
        // out of the bucket on a path-style endpoint).
        if s3 { _ = infmllm_curl_set_long(handle, CURLOPT_PATH_AS_IS, 1) }
        _ = infmllm_curl_set_long(handle, CURLOPT_MAXREDIRS, settings.maxRedirects)
        _ = infmllm_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = infmllm_curl_set_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        _ = infmllm_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(milliseconds, 15_000))
        if sink.consume == nil {
            // A whole body within the limit, in the time an attempt has.
            _ = infmllm_curl_set_long(handle, CURLOPT_TIMEOUT_MS, milliseconds)
            _ = infmllm_curl_set_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(sink.limit))
        } else {
            // A stream of any length: an attempt ends when under 1 KiB a second has come for the time an attempt has.
            _ = infmllm_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1024)
            _ = infmllm_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, max(1, Int(settings.timeout.rounded(.up))))
        }
        if let range {
            _ = infmllm_curl_set_string(handle, CURLOPT_RANGE, range)  // byte offsets: no content encoding
        } else {
            _ = infmllm_curl_set_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        }
        _ = infmllm_curl_set_string(handle, CURLOPT_USERAGENT, "infmllm")
        _ = infmllm_curl_set_write(
            handle,
            { data, size, count, context in
                let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                return sink.take(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
            }, context)
        _ = infmllm_curl_set_header(
            handle,
            { data, size, count, context in
                let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
                sink.header(UnsafeRawBufferPointer(start: data, count: size * count))
                return size * count
            }, context)
        // The S3 endpoint an operator configured is reached wherever it is (a store on the local network): an s3://
        // request goes to that host and no other, following no redirect.
        if !settings.allowPrivateAddresses && !(s3 && settings.s3.endpoint != nil) {
            // A proxy from the environment would be the only address checked: connect to the image's host itself.
            _ = infmllm_curl_set_string(handle, CURLOPT_PROXY, "")
            _ = infmllm_curl_set_opensocket(
                handle,
                { context, _, address in
                    guard let context, let address else { return CURL_SOCKET_BAD }
                    let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
                    let (range, text) = PrivateAddress.classify(
                        infmllm_curl_socket_address(address),
                        length: Int(infmllm_curl_socket_address_length(address)))
                    if let range {
                        sink.refused = (text, range)
                        return CURL_SOCKET_BAD
                    }
                    return infmllm_curl_open_socket(address)
                }, context)
        }
        let code = curl_easy_perform(handle)
        if let refused = sink.refused, code != CURLE_OK {
            return .permanent(
                "refused to connect to \(refused.address) (\(refused.range)): workers fetch from non-public "
                    + "addresses only with --allow-private-urls")
        }
        var status = 0
        _ = infmllm_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var retryAfter: curl_off_t = 0
        _ = infmllm_curl_get_offset(handle, CURLINFO_RETRY_AFTER, &retryAfter)
        var modified: curl_off_t = -1
        _ = infmllm_curl_get_offset(handle, CURLINFO_FILETIME_T, &modified)
        sink.validators.modified = modified >= 0 ? Int64(modified) : nil
        let message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OK:
            break
        case CURLE_WRITE_ERROR where sink.stopped:
            return .permanent(Sink.stoppedReason)
        case CURLE_WRITE_ERROR where sink.errorPage > Sink.errorPageLimit:
            break  // an error page cut short: its status says what happened
        case _ where sink.ranged && status == 200:  // cut short by the limit, or at its first byte
            return .permanent(
                "the server answered with the whole file (HTTP \(status)), not the bytes asked for: it does not serve "
                    + "byte ranges, which reading archive members in place needs")
        case CURLE_FILESIZE_EXCEEDED where !(200..<300).contains(status):
            break  // an error page longer than the body asked for: its status says what happened
        case CURLE_FILESIZE_EXCEEDED:
            return .permanent("the body is over the \(sink.limit)-byte limit")
        case CURLE_WRITE_ERROR where sink.exceeded:
            return .permanent("the body is over the \(sink.limit)-byte limit")
        case CURLE_TOO_MANY_REDIRECTS:
            return .permanent("more than \(settings.maxRedirects) redirects")
        case CURLE_OPERATION_TIMEDOUT where sink.consume != nil:
            return .transient("no answer, or under 1 KiB a second, for \(settings.timeout) s", retryAfter: nil)
        case CURLE_OPERATION_TIMEDOUT:
            return .transient("no complete answer within \(settings.timeout) s", retryAfter: nil)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING,
            CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return .transient(message, retryAfter: nil)
        default:
            return .permanent(message)
        }
        switch status {
        case 200..<300:
            return .body(sink.bytes)
        case 408, 429, 500..<600:
            return .transient("HTTP \(status)", retryAfter: retryAfter > 0 ? Double(retryAfter) : nil)
        case 416:
            return .permanent("HTTP 416: the file is shorter than the range asked for")
        case 412:
            return .permanent("HTTP 412: the file has changed since the first part of it was read")
        default:
            if s3, let region = sink.bucketRegion, region != settings.s3.region {
                return .permanent(
                    "HTTP \(status): the bucket is in \(region), not \(settings.s3.region): set AWS_REGION")
            }
            return .permanent("HTTP \(status)")
        }
    }
}
