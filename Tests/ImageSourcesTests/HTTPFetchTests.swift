// Fetching images from a real HTTP server (nginx on loopback): success, redirects, 404, a 500 that clears, a body
// slower than the timeout, a redirect loop, an oversized body and 429 with Retry-After.

import Foundation
import ImageSources
import TestSupport
import Testing

@Suite struct HTTPFetchTests {
    static let image = RepositoryFiles.path("Tests/ImagingTests/Fixtures/images/rgb_64x64.png")

    static func server() throws -> NginxServer {
        let server = try NginxServer()
        let png = try Data(contentsOf: URL(fileURLWithPath: image))
        try server.put("/images/a.png", png)
        try server.put("/slow/a.png", Data(repeating: 7, count: 64 << 10))
        try server.put("/big.png", Data(repeating: 1, count: 3 << 20))
        return server
    }

    static let quick = FetchSettings(
        timeout: 2, attempts: 3, maxRedirects: 5, backoff: 0.3, allowPrivateAddresses: true)

    /// Requests for `path` in the access log, once every request made so far has been logged (nginx logs a request
    /// just after answering it, and one the client gave up on when it notices): a retry that should not have
    /// happened is counted.
    static func requests(_ server: NginxServer, _ path: String) throws -> [String] {
        try server.settledAccessLog().filter { $0.contains(path) }
    }

    @Test func aFileAndARedirectToItAreFetched() throws {
        let server = try Self.server()
        let reader = ImageReader(fetch: Self.quick)
        let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.image)))
        #expect(try reader.bytes(of: server.url("/images/a.png")) == expected)
        #expect(try reader.bytes(of: server.url("/moved/images/a.png")) == expected)
    }

    @Test func notFoundFailsAtOnce() throws {
        let server = try Self.server()
        #expect {
            try ImageReader(fetch: Self.quick).bytes(of: server.url("/images/missing.png"))
        } throws: { error in
            let error = error as? ImageSourceError
            return error?.reason == "HTTP 404" && error?.isTransient == false
        }
        let requests = try Self.requests(server, "/images/missing.png")
        #expect(requests.count == 1, "not retried: \(requests)")
    }

    @Test func aServerErrorThatClearsIsRetried() throws {
        let server = try Self.server()
        let png = try Data(contentsOf: URL(fileURLWithPath: Self.image))
        // The file appears once the first attempt has been answered 500.
        let fixer = Thread {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, !server.accessLog().contains(where: { $0.contains("/flaky/a.png") }) {
                Thread.sleep(forTimeInterval: 0.01)
            }
            try? server.put("/flaky/a.png", png)
        }
        fixer.start()
        #expect(try ImageReader(fetch: Self.quick).bytes(of: server.url("/flaky/a.png")) == [UInt8](png))
        let attempts = try Self.requests(server, "/flaky/a.png")
        #expect(attempts.count >= 2 && attempts[0].contains("\" 500 "), "\(attempts)")
    }

    @Test func aBodySlowerThanTheTimeoutFailsAfterEveryAttempt() throws {
        let server = try Self.server()
        let settings = FetchSettings(timeout: 1, attempts: 2, backoff: 0.1, allowPrivateAddresses: true)
        let begin = Date()
        #expect {
            try ImageReader(fetch: settings).bytes(of: server.url("/slow/a.png"))
        } throws: { error in
            let error = error as? ImageSourceError
            return error?.reason.contains("within 1.0 s (after 2 attempts)") == true && error?.isTransient == true
        }
        #expect(Date().timeIntervalSince(begin) < 6)
    }

    /// A timeout under a millisecond is still a limit: curl reads 0 ms as none, and the slow body would take
    /// two minutes.
    @Test func aTimeoutUnderAMillisecondStillLimits() throws {
        let server = try Self.server()
        let settings = FetchSettings(timeout: 0.0004, attempts: 1, backoff: 0.1, allowPrivateAddresses: true)
        #expect {
            try ImageReader(fetch: settings).bytes(of: server.url("/slow/a.png"))
        } throws: { ($0 as? ImageSourceError)?.reason.contains("no complete answer within 0.0004 s") == true }
    }

    @Test func aRedirectLoopIsCutShort() throws {
        let server = try Self.server()
        #expect {
            try ImageReader(fetch: Self.quick).bytes(of: server.url("/loop"))
        } throws: { "\($0)".contains("more than 5 redirects") }
    }

    @Test func aBodyOverTheLimitIsRefused() throws {
        let server = try Self.server()
        #expect {
            try ImageReader(fetch: Self.quick, maxBytes: 1 << 20).bytes(of: server.url("/big.png"))
        } throws: { "\($0)".contains("over the 1048576-byte limit") }
        let requests = try Self.requests(server, "/big.png")
        #expect(requests.count == 1, "logged once, not retried: \(requests)")
    }

    @Test func tooManyRequestsWaitsForRetryAfter() throws {
        let server = try Self.server()
        let begin = Date()
        #expect {
            try ImageReader(fetch: FetchSettings(timeout: 2, attempts: 2, backoff: 0.01, allowPrivateAddresses: true))
                .bytes(of: server.url("/busy"))
        } throws: { "\($0)".contains("HTTP 429 (after 2 attempts)") }
        #expect(Date().timeIntervalSince(begin) >= 0.9, "waited the server's Retry-After of 1 s, not the backoff")
    }
}
