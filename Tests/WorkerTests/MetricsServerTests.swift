// The metrics endpoint refuses to start quietly: a taken port or a bad address is an error with the reason.

import Testing

@testable import Worker

@Suite struct MetricsServerTests {
    @Test func aTakenPortIsAnErrorWithTheReason() throws {
        let metrics = WorkerMetrics()
        var started: MetricsServer?
        var port = 0
        for candidate in 41_000..<41_050 {
            let server = try MetricsServer(address: "127.0.0.1:\(candidate)", metrics: metrics)
            if (try? server.start()) != nil {
                started = server
                port = candidate
                break
            }
        }
        try #require(started != nil)
        let second = try MetricsServer(address: "127.0.0.1:\(port)", metrics: metrics)
        #expect {
            try second.start()
        } throws: { "\($0)".contains("cannot serve metrics on 127.0.0.1:\(port)") }
        #expect(throws: MetricsServerError.self) { try MetricsServer(address: "nonsense", metrics: metrics) }
    }
}
