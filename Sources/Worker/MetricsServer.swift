// The worker's HTTP endpoint for Prometheus and for orchestrators: /metrics, /healthz (alive) and /readyz (model
// loaded, PostgreSQL and RabbitMQ reachable at their last use), served by FlyingFox on its own task.

import FlyingFox
import FlyingSocks
import Foundation

/// Serves a worker's metrics and health on `host:port` until the process ends.
public final class MetricsServer: Sendable {
    private let server: HTTPServer
    private let metrics: WorkerMetrics
    private let address: String

    /// - Parameter address: `host:port` (an IPv4 address, `0.0.0.0` for every interface) or `:port`.
    public init(address: String, metrics: WorkerMetrics) throws {
        let parts = address.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else {
            throw MetricsServerError(message: "--metrics-address \(address): use host:port, e.g. 0.0.0.0:9464")
        }
        let host = parts[0].isEmpty ? "0.0.0.0" : String(parts[0])
        server = HTTPServer(address: try sockaddr_in.inet(ip4: host, port: port), logger: .disabled)
        self.metrics = metrics
        self.address = address
    }

    /// Registers the routes, starts listening in the background and returns once the port is open.
    ///
    /// - Throws: `MetricsServerError` with the reason when the server cannot listen (the port is taken, say).
    /// Call from synchronous code: it waits on a semaphore.
    public func start() throws {
        let server = self.server, metrics = self.metrics
        let outcome = StartOutcome()
        Task {
            await server.appendRoute("GET /metrics") { _ in
                HTTPResponse(
                    statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: Data(metrics.exposition().utf8))
            }
            await server.appendRoute("GET /healthz") { _ in HTTPResponse(statusCode: .ok, body: Data("ok\n".utf8)) }
            await server.appendRoute("GET /readyz") { _ in
                metrics.isReady
                    ? HTTPResponse(statusCode: .ok, body: Data("ready\n".utf8))
                    : HTTPResponse(statusCode: .serviceUnavailable, body: Data("not ready\n".utf8))
            }
            do {
                try await server.run()
            } catch {
                outcome.finish("\(error)")
            }
        }
        Task {
            do {
                try await server.waitUntilListening(timeout: 10)
                outcome.finish(nil)
            } catch {
                outcome.finish("not listening after 10 s: \(error)")
            }
        }
        if let failure = outcome.wait() {
            throw MetricsServerError(message: "cannot serve metrics on \(address): \(failure)")
        }
    }
}

/// The first of "listening" (nil) or a failure, handed from the server's tasks to the starting thread.
private final class StartOutcome: @unchecked Sendable {
    // Invariant: `result` and `done` are only read and written while holding `lock`; `finished` is signalled once.
    private let lock = NSLock()
    private var result: String?
    private var done = false
    private let finished = DispatchSemaphore(value: 0)

    func finish(_ failure: String?) {
        let first: Bool = lock.withLock {
            guard !done else { return false }
            done = true
            result = failure
            return true
        }
        if first { finished.signal() }
    }

    func wait() -> String? {
        finished.wait()
        return lock.withLock { result }
    }
}

public struct MetricsServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
