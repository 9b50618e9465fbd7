// A TCP proxy on 127.0.0.1 for tests of half-broken networks: it forwards every connection to a target port until
// `blackhole()`, after which the connections open then stay open but nothing passes either way, as when a network
// path dies without a reset. Connections made after that are forwarded again.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Forwards connections on `port` to `target` on 127.0.0.1. Thread-safe.
public final class TCPProxy: @unchecked Sendable {
    public let port: Int
    public let target: Int
    private let listener: Int32
    // Invariant: `generation` and `sockets` are only read and written while holding `lock`.
    private let lock = NSLock()
    /// Connections whose generation is below this pass nothing any more.
    private var generation = 0
    private var sockets: [Int32] = []

    public init(target: Int) throws {
        self.target = target
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listening, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listening, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listening, 64) == 0 else {
            close(listening)
            throw NginxError(message: "proxy: cannot listen: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
        }
        listener = listening
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        lock.withLock { for socket in sockets { close(socket) } }
    }

    /// From now on the open connections pass nothing, in either direction, and are never closed by the proxy.
    public func blackhole() {
        lock.withLock { generation += 1 }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // not inherited by the processes tests start
            guard let upstream = try? TCPClient(port: target) else {
                close(client)
                continue
            }
            let server = fcntl(upstream.socket, F_DUPFD_CLOEXEC, 0)
            let born = lock.withLock {
                sockets += [client, server]
                return generation
            }
            Thread.detachNewThread { [self] in pump(from: client, to: server, born: born) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, born: born) }
        }
    }

    /// Copies bytes while the connection's generation is current; after a blackhole, reads and drops them.
    private func pump(from source: Int32, to destination: Int32, born: Int) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(source, &buffer, buffer.count, 0)
            if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }  // a receive timeout: wait on
            if count <= 0 {
                if lock.withLock({ generation == born }) { shutdown(destination, Int32(SHUT_WR)) }
                return
            }
            guard lock.withLock({ generation == born }) else { continue }
            var sent = 0
            while sent < count {
                let written = buffer[sent..<count].withUnsafeBytes {
                    send(destination, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                if written <= 0 { return }
                sent += written
            }
        }
    }
}
