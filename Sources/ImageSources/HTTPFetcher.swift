// Images over HTTP(S) through libcurl: connections kept and reused between fetches, a time limit per attempt, a size
// limit enforced while the body arrives, redirects followed up to a bound (to http and https only), and transient
// failures (timeouts, refused or dropped connections, 5xx, 408, 429) retried with exponential backoff, honouring
// Retry-After. Other 4xx answers and bodies over the limit fail at once.

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

    public init(
        timeout: Double = 60, attempts: Int = 4, maxRedirects: Int = 5, backoff: Double = 0.5,
        maxRetryAfter: Double = 60, allowPrivateAddresses: Bool = false
    ) {
        self.allowPrivateAddresses = allowPrivateAddresses
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
        guard let handle = lock.withLock({ idle.popLast() }) ?? curl_easy_init() else {
            throw ImageSourceError(source: url, reason: "libcurl could not start a transfer", isTransient: true)
        }
        defer { lock.withLock { idle.append(handle) } }
        var delay = settings.backoff
        var last = ""
        for attempt in 1...settings.attempts {
            switch perform(handle, url: url, limit: limit) {
            case let .body(bytes):
                return bytes
            case let .permanent(reason):
                throw ImageSourceError(source: url, reason: reason)
            case let .transient(reason, retryAfter):
                last = reason
                guard attempt < settings.attempts else { break }
                let wait = retryAfter.map { min($0, settings.maxRetryAfter) } ?? delay
                Thread.sleep(forTimeInterval: wait)
                delay *= 2
            }
        }
        throw ImageSourceError(
            source: url, reason: "\(last) (after \(settings.attempts) attempts)", isTransient: true)
    }

    /// Collects a body, refusing to grow past its limit.
    private final class Sink {
        var bytes: [UInt8] = []
        let limit: Int
        var exceeded = false
        /// The non-public address a connection was refused to, and its range.
        var refused: (address: String, range: String)?
        init(limit: Int) { self.limit = limit }
    }

    private func perform(_ handle: UnsafeMutableRawPointer, url: String, limit: Int) -> Outcome {
        curl_easy_reset(handle)  // settings only: the connection cache stays
        let sink = Sink(limit: limit)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        // At least 1: curl reads 0 as no limit at all.
        let milliseconds = max(1, Int((settings.timeout * 1000).rounded(.up)))
        _ = infmllm_curl_set_string(handle, CURLOPT_URL, url)
        _ = infmllm_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = infmllm_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 1)
        _ = infmllm_curl_set_long(handle, CURLOPT_MAXREDIRS, settings.maxRedirects)
        _ = infmllm_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = infmllm_curl_set_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        _ = infmllm_curl_set_long(handle, CURLOPT_TIMEOUT_MS, milliseconds)
        _ = infmllm_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(milliseconds, 15_000))
        _ = infmllm_curl_set_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit))
        _ = infmllm_curl_set_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        _ = infmllm_curl_set_string(handle, CURLOPT_USERAGENT, "infmllm")
        _ = infmllm_curl_set_write(
            handle,
            { data, size, count, context in
                let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                guard sink.bytes.count + length <= sink.limit else {
                    sink.exceeded = true
                    return 0  // aborts the transfer
                }
                sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
                return length
            }, context)
        if !settings.allowPrivateAddresses {
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
        let message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OK:
            break
        case CURLE_FILESIZE_EXCEEDED:
            return .permanent("the body is over the \(limit)-byte limit")
        case CURLE_WRITE_ERROR where sink.exceeded:
            return .permanent("the body is over the \(limit)-byte limit")
        case CURLE_TOO_MANY_REDIRECTS:
            return .permanent("more than \(settings.maxRedirects) redirects")
        case CURLE_OPERATION_TIMEDOUT:
            return .transient("no complete answer within \(settings.timeout) s", retryAfter: nil)
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING,
            CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR:
            return .transient(message, retryAfter: nil)
        default:
            return .permanent(message)
        }
        switch status {
        case 200..<300:
            return .body(sink.bytes)
        case 408, 429, 500..<600:
            return .transient("HTTP \(status)", retryAfter: retryAfter > 0 ? Double(retryAfter) : nil)
        default:
            return .permanent("HTTP \(status)")
        }
    }
}
