// Raw TCP connections for tests that misbehave on purpose: idle connections, endless header lines, requests sent
// a byte at a time.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One blocking TCP connection to 127.0.0.1.
public final class TCPClient {
    public private(set) var socket: Int32

    /// - Parameter waiting: false to return at once, the connection still being set up (for opening many).
    public init(port: Int, waiting: Bool = true) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw NginxError(message: "socket: \(String(cString: strerror(errno)))") }
        if !waiting { _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 || (!waiting && errno == EINPROGRESS) else {
            let reason = String(cString: strerror(errno))
            close()
            throw NginxError(message: "connect to port \(port): \(reason)")
        }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close() }

    /// Closes the connection (once).
    public func close() {
        if socket >= 0 { Glibc.close(socket) }
        socket = -1
    }

    /// Sends all of `bytes`; false when the peer closed the connection first.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes {
                Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    /// Everything the peer sends until it closes the connection (or 60 s pass without a byte).
    public func readToEnd() -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Sends a GET for `path` and returns the whole answer.
    public func get(_ path: String) -> String {
        send(Array("GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n".utf8))
        return readToEnd()
    }

    /// Raises this process's soft limit on open descriptors to at least `count` (up to the hard limit); returns
    /// the limit now in force.
    @discardableResult
    public static func allowOpenFiles(_ count: Int) -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < rlim_t(count) {
            limit.rlim_cur = min(limit.rlim_max, rlim_t(count))
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}
