// The metrics endpoint refuses to start quietly (a taken port or a bad address is an error with the reason), and
// stays bounded against clients that misbehave: an endless header, connections that send nothing, a request sent a
// byte at a time; /healthz fails when the worker's loop or its consumer is stuck.

import Foundation
import Jobs
import TestSupport
import Testing

@testable import Worker

@Suite struct MetricsServerTests {
    /// A started server on a free port, and the port.
    static func started(_ metrics: WorkerMetrics = WorkerMetrics(), limits: MetricsServer.Limits = .init()) throws
        -> (MetricsServer, Int)
    {
        for _ in 0..<20 {
            let port = try NginxServer.freePort()
            let server = try MetricsServer(address: "127.0.0.1:\(port)", metrics: metrics, limits: limits)
            if (try? server.start()) != nil { return (server, port) }
        }
        throw NginxError(message: "no free port")
    }

    @Test func aTakenPortIsAnErrorWithTheReason() throws {
        let metrics = WorkerMetrics()
        let (_, port) = try Self.started(metrics)
        let second = try MetricsServer(address: "127.0.0.1:\(port)", metrics: metrics)
        #expect {
            try second.start()
        } throws: { "\($0)".contains("cannot serve metrics on 127.0.0.1:\(port)") }
        #expect(throws: MetricsServerError.self) { try MetricsServer(address: "nonsense", metrics: metrics) }
        #expect(throws: MetricsServerError.self) { try MetricsServer(address: "host.example:80", metrics: metrics) }
    }

    @Test func routesAnswerAndUnknownOnesAreRefused() throws {
        let (_, port) = try Self.started()
        let metrics = try TCPClient(port: port).get("/metrics")
        #expect(metrics.hasPrefix("HTTP/1.1 200 OK") && metrics.contains("infmllm_model_steps_total"))
        #expect(try TCPClient(port: port).get("/healthz").hasPrefix("HTTP/1.1 200"))
        #expect(try TCPClient(port: port).get("/readyz").hasPrefix("HTTP/1.1 503"), "no model loaded yet")
        #expect(try TCPClient(port: port).get("/nowhere").hasPrefix("HTTP/1.1 404"))
        let post = try TCPClient(port: port)
        post.send(Array("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".utf8))
        #expect(post.readToEnd().hasPrefix("HTTP/1.1 405"))
        let garbage = try TCPClient(port: port)
        garbage.send(Array("\u{1}\u{2}\u{3}\r\n\r\n".utf8))
        #expect(garbage.readToEnd().hasPrefix("HTTP/1.1 400"))
    }

    @Test func anEndlessHeaderIsCutOffAndTheServerGoesOn() throws {
        let (_, port) = try Self.started()
        let client = try TCPClient(port: port)
        // 1 MB of one header line: the server answers 431 after 8 KiB and closes, whatever is still being sent.
        let line = Array("GET /metrics HTTP/1.1\r\nX-Filler: ".utf8) + [UInt8](repeating: 97, count: 1 << 20)
        client.send(line)
        #expect(client.readToEnd().hasPrefix("HTTP/1.1 431"))
        #expect(try TCPClient(port: port).get("/metrics").hasPrefix("HTTP/1.1 200"))
    }

    @Test func idleConnectionsBeyondTheCapWaitAndAreClosedAfterTheReadTimeout() throws {
        var limits = MetricsServer.Limits()
        limits.maxConnections = 4
        limits.readTimeout = 0.5
        let (_, port) = try Self.started(limits: limits)
        // Thirty connections that never send: four are taken at a time and closed after the read timeout.
        let idle = try (0..<30).map { _ in try TCPClient(port: port) }
        for client in idle.prefix(4) { #expect(client.readToEnd().isEmpty, "closed without an answer") }
        // A real request behind them gets its answer once they have been dealt with.
        #expect(try TCPClient(port: port).get("/metrics").hasPrefix("HTTP/1.1 200"))
        // A request sent one byte at a time, slower than the read timeout allows, is closed unanswered.
        let slow = try TCPClient(port: port)
        for byte in Array("GET /met".utf8) {
            guard slow.send([byte]) else { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(slow.readToEnd().isEmpty)
    }

    @Test func healthFailsWhenTheLoopOrTheConsumerIsStuck() throws {
        let metrics = WorkerMetrics()
        let now = SystemClock().now()
        #expect(metrics.livenessProblem(now: now) == nil, "nothing has run yet: alive while loading")
        metrics.loopRan()
        #expect(metrics.livenessProblem(now: now + 10) == nil)
        #expect(metrics.livenessProblem(now: now + WorkerMetrics.stallBound + 5)?.contains("loop has not run") == true)
        metrics.service("rabbitmq", reachable: false)
        metrics.loopRan()
        let lost = SystemClock().now()
        #expect(metrics.livenessProblem(now: lost + 10) == nil)
        #expect(
            metrics.livenessProblem(now: lost + WorkerMetrics.consumerLostBound + 5)?.contains("consumer has been lost")
                == true)
        metrics.service("rabbitmq", reachable: true)
        #expect(metrics.livenessProblem(now: lost + WorkerMetrics.consumerLostBound + 5) == nil)
    }
}
