// The worker's HTTP endpoint for Prometheus and for orchestrators: /metrics, /healthz (alive) and /readyz (model
// loaded, PostgreSQL and RabbitMQ reachable), served by FlyingFox on its own task.

import FlyingFox
import FlyingSocks
import Foundation

/// Serves a worker's metrics and health on `host:port` until the process ends.
public final class MetricsServer: Sendable {
    private let server: HTTPServer

    /// - Parameter address: `host:port` (an IPv4 address, `0.0.0.0` for every interface) or `:port`.
    public init(address: String, metrics: WorkerMetrics) throws {
        let parts = address.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else {
            throw MetricsServerError(message: "--metrics-address \(address): use host:port, e.g. 0.0.0.0:9464")
        }
        let host = parts[0].isEmpty ? "0.0.0.0" : String(parts[0])
        server = HTTPServer(address: try sockaddr_in.inet(ip4: host, port: port), logger: .disabled)
        let routes = server
        Task {
            await routes.appendRoute("GET /metrics") { _ in
                HTTPResponse(
                    statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: Data(metrics.exposition().utf8))
            }
            await routes.appendRoute("GET /healthz") { _ in HTTPResponse(statusCode: .ok, body: Data("ok\n".utf8)) }
            await routes.appendRoute("GET /readyz") { _ in
                metrics.isReady
                    ? HTTPResponse(statusCode: .ok, body: Data("ready\n".utf8))
                    : HTTPResponse(statusCode: .serviceUnavailable, body: Data("not ready\n".utf8))
            }
        }
    }

    /// Starts listening in the background; returns once the port is open.
    public func start() throws {
        let server = self.server
        Task { try await server.run() }
        let opened = DispatchSemaphore(value: 0)
        Task {
            try? await server.waitUntilListening(timeout: 10)
            opened.signal()
        }
        opened.wait()
    }
}

public struct MetricsServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
