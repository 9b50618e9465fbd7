// The worker's HTTP endpoint for Prometheus and for orchestrators: /metrics, /healthz (alive: the consumer has not
// been stuck for long) and /readyz (model loaded, PostgreSQL and RabbitMQ reachable at their last use).
//
// The port may be reachable by anyone on the network, so the server is small and bounded: one thread polls every
// socket; a request's head may take at most `Limits.maxHeadBytes` (431 past it) and arrive within
// `Limits.readTimeout` seconds of the connection (closed after it); bodies are never read; at most
// `Limits.maxConnections` are open at once (the rest wait in the listen backlog); each answer closes its connection.
// An endless header line or thousands of idle connections cost a fixed amount of memory and descriptors, and
// /metrics answers again once they are gone.

import Foundation
import Jobs

#if canImport(Glibc)
    import Glibc
#endif

/// Serves a worker's metrics and health on `host:port` until the process ends.
public final class MetricsServer: @unchecked Sendable {
    /// Bounds on what a client may hold.
    public struct Limits: Sendable {
        public var maxHeadBytes = 8192
        public var readTimeout: Double = 10
        public var maxConnections = 256

        public init() {}
    }

    private let metrics: WorkerMetrics
    private let address: String
    private let host: String
    private let port: UInt16
    private let limits: Limits
    private let clock = SystemClock()
    // Invariant: `listener` is set once by `start` before the serving thread starts, and read only by that thread.
    private var listener: Int32 = -1

    /// - Parameter address: `host:port` (an IPv4 address, `0.0.0.0` for every interface) or `:port`.
    public init(address: String, metrics: WorkerMetrics, limits: Limits = Limits()) throws {
        let parts = address.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else {
            throw MetricsServerError(message: "--metrics-address \(address): use host:port, e.g. 0.0.0.0:9464")
        }
        host = parts[0].isEmpty ? "0.0.0.0" : String(parts[0])
        var probe = in_addr()
        guard inet_pton(AF_INET, host, &probe) == 1 else {
            throw MetricsServerError(message: "--metrics-address \(address): \(host) is not an IPv4 address")
        }
        self.port = port
        self.metrics = metrics
        self.address = address
        self.limits = limits
    }

    /// Opens the port and starts serving on a thread of its own; returns once the port is open.
    ///
    /// - Throws: `MetricsServerError` with the reason when the server cannot listen (the port is taken, say).
    public func start() throws {
        func fail(_ what: String) -> MetricsServerError {
            MetricsServerError(
                message: "cannot serve metrics on \(address): \(what): \(String(cString: strerror(errno)))")
        }
        let socket = Glibc.socket(
            AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw fail("socket") }
        var yes: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &socketAddress.sin_addr)
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let error = fail("bind")
            close(socket)
            throw error
        }
        guard listen(socket, 128) == 0 else {
            let error = fail("listen")
            close(socket)
            throw error
        }
        listener = socket
        let thread = Thread { [self] in serve() }
        thread.name = "metrics"
        thread.start()
    }

    /// One client connection: what it sent so far, what is left to send, and when it must be done.
    private struct Connection {
        let socket: Int32
        let deadline: Double
        var received: [UInt8] = []
        var reply: [UInt8] = []
        var sent = 0
        /// The answer is sent and the sending side shut: what the client still sends is read and dropped until it
        /// closes (or the deadline), so that closing with unread data does not reset the answer away.
        var draining = false
    }

    private func serve() {
        var connections: [Connection] = []
        // Out of descriptors, the listener stays readable: it is left alone for a moment instead of spinning.
        var listenAfter = 0.0
        while true {
            let now = clock.now()
            // Past their deadline: closed, whatever they were doing.
            connections.removeAll { connection in
                guard connection.deadline <= now else { return false }
                close(connection.socket)
                return true
            }
            let accepting = connections.count < limits.maxConnections && now >= listenAfter
            var descriptors: [pollfd] = connections.map {
                pollfd(fd: $0.socket, events: Int16($0.reply.isEmpty || $0.draining ? POLLIN : POLLOUT), revents: 0)
            }
            if accepting { descriptors.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
            let nearest = (connections.map(\.deadline) + [listenAfter]).filter { $0 > now }.min().map { $0 - now } ?? 1
            let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(min(1, nearest) * 1000) + 1)
            guard ready > 0 else { continue }
            var next: [Connection] = []
            for (index, var connection) in connections.enumerated() {
                let events = descriptors[index].revents
                if events == 0 {
                    next.append(connection)
                } else if step(&connection, events: events) {
                    next.append(connection)
                } else {
                    close(connection.socket)
                }
            }
            connections = next
            if accepting, let listening = descriptors.last, listening.revents & Int16(POLLIN) != 0 {
                while connections.count < limits.maxConnections {
                    let client = accept(listener, nil, nil)
                    guard client >= 0 else {  // EAGAIN, or out of descriptors: the rest wait
                        if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                            listenAfter = clock.now() + 0.1
                        }
                        break
                    }
                    _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                    _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                    connections.append(Connection(socket: client, deadline: clock.now() + limits.readTimeout))
                }
            }
        }
    }

    /// Reads or writes what `connection` is ready for; false once it is finished or broken.
    private func step(_ connection: inout Connection, events: Int16) -> Bool {
        if connection.draining {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = recv(connection.socket, &buffer, buffer.count, 0)
            return count > 0 || (count < 0 && (errno == EAGAIN || errno == EINTR))
        }
        if connection.reply.isEmpty {
            if events & Int16(POLLIN) == 0 { return false }  // an error or a hang-up before a request
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(connection.socket, &buffer, buffer.count, 0)
            if count < 0 { return errno == EAGAIN || errno == EINTR }
            if count == 0 { return false }
            connection.received += buffer[0..<count]
            if let end = Self.headEnd(connection.received), end <= limits.maxHeadBytes {
                connection.reply = response(to: Array(connection.received[0..<end]))
            } else if connection.received.count > limits.maxHeadBytes {
                connection.reply = Self.reply(431, "Request Header Fields Too Large", "request head too large\n")
            } else {
                return true
            }
            connection.received = []
        }
        let count = connection.reply[connection.sent...].withUnsafeBytes {
            send(connection.socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
        }
        if count < 0 { return errno == EAGAIN || errno == EINTR }
        connection.sent += count
        if connection.sent == connection.reply.count {
            shutdown(connection.socket, Int32(SHUT_WR))
            connection.draining = true
        }
        return true
    }

    /// Where the head ends (after its blank line), if it has.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count
        where bytes[index] == 10 && bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 {
            return index + 1
        }
        return nil
    }

    /// The answer to a request head.
    func response(to head: [UInt8]) -> [UInt8] {
        let line = head.prefix { $0 != 13 && $0 != 10 }
        let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return Self.reply(400, "Bad Request", "bad request\n")
        }
        let method = parts[0], path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        guard method == "GET" || method == "HEAD" else {
            return Self.reply(405, "Method Not Allowed", "GET only\n")
        }
        let answer: [UInt8]
        switch path {
        case "/metrics":
            answer = Self.reply(
                200, "OK", metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/healthz":
            if let problem = metrics.livenessProblem() {
                answer = Self.reply(503, "Service Unavailable", problem + "\n")
            } else {
                answer = Self.reply(200, "OK", "ok\n")
            }
        case "/readyz":
            answer =
                metrics.isReady
                ? Self.reply(200, "OK", "ready\n") : Self.reply(503, "Service Unavailable", "not ready\n")
        default:
            answer = Self.reply(404, "Not Found", "not found\n")
        }
        guard method == "HEAD", let end = Self.headEnd(answer) else { return answer }
        return Array(answer[0..<end])
    }

    static func reply(_ status: Int, _ phrase: String, _ body: String, contentType: String = "text/plain") -> [UInt8] {
        let bytes = Array(body.utf8)
        let head =
            "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bytes.count)\r\n"
            + "Connection: close\r\n\r\n"
        return Array(head.utf8) + bytes
    }
}

public struct MetricsServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
