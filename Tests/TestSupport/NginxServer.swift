// A real HTTP server for tests: Debian's nginx on a loopback port of its own, serving a folder, with the locations
// the image-fetching tests need (a slow body, a redirect loop, a 500 until a file appears, a 429 with Retry-After,
// files served without byte ranges, a body that stalls until it is asked for again from where it stopped, a 503
// whose page is /huge.bin).

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An nginx process serving `root`, stopped when this object goes away.
///
/// `@unchecked Sendable`: every property is set in `init` and never changes; the process is stopped in `deinit`.
public final class NginxServer: @unchecked Sendable {
    public let root: URL
    public let port: Int
    private let directory: URL
    private let process: ServerProcess

    /// The URL of `path` on this server (`path` starts with /).
    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "infmllm-nginx-\(UInt64.random(in: 0...UInt64.max))")
        root = directory.appendingPathComponent("www")
        for folder in ["www", "logs", "temp"] {
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        port = try Self.freePort()
        let temp = directory.appendingPathComponent("temp").path
        let config = """
            daemon off;
            master_process off;
            error_log \(directory.path)/logs/error.log;
            pid \(directory.path)/logs/nginx.pid;
            events { worker_connections 256; }
            http {
                access_log \(directory.path)/logs/access.log;
                client_body_temp_path \(temp)/body; proxy_temp_path \(temp)/proxy;
                fastcgi_temp_path \(temp)/fastcgi; uwsgi_temp_path \(temp)/uwsgi; scgi_temp_path \(temp)/scgi;
                default_type application/octet-stream;
                # A first request stalls after 4 KiB; a request that asks for a range (a resumed one) does not.
                map $http_range $stall_rate { "" 100; default 0; }
                server {
                    listen 127.0.0.1:\(port);
                    root \(root.path);
                    location /slow/ { limit_rate 512; limit_rate_after 0; sendfile off; }
                    location = /loop { return 302 /loop; }
                    location /flaky/ { try_files $uri =500; }
                    location = /busy { add_header Retry-After 1 always; return 429; }
                    location /moved/ { rewrite ^/moved/(.*)$ /$1 redirect; }
                    location /whole/ { max_ranges 0; }
                    location = /huge-error { error_page 418 =503 /huge.bin; return 418; }
                    location /stall/ { limit_rate_after 4k; limit_rate $stall_rate; sendfile off; }
                    location /whole-stall/ { max_ranges 0; limit_rate_after 4k; limit_rate $stall_rate; sendfile off; }
                }
            }
            """
        let configPath = directory.appendingPathComponent("nginx.conf")
        try config.write(to: configPath, atomically: true, encoding: .utf8)
        process = try ServerProcess(
            ["/usr/sbin/nginx", "-p", directory.path, "-c", configPath.path],
            log: directory.appendingPathComponent("logs/stderr.log").path)
        // Ready when the port answers.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !process.hasExited() {
            if Self.accepts(port) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("logs/error.log"), encoding: .utf8)) ?? ""
        throw NginxError(message: "nginx did not start on port \(port): \(log)")
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)  // `process` is killed as it goes
    }

    /// Lines of the access log so far.
    public func accessLog() -> [String] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("logs/access.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// The access log's lines for requests of `path`, once at least `count` have been logged (within 30 s; nginx
    /// logs a request when it has ended, which for one the client gave up on can be after later ones).
    public func requests(_ path: String, atLeast count: Int) -> [String] {
        let deadline = Date().addingTimeInterval(30)
        var found: [String] = []
        repeat {
            found = accessLog().filter { $0.contains(path) }
            if found.count >= count { break }
            Thread.sleep(forTimeInterval: 0.01)
        } while Date() < deadline
        return found
    }

    /// The access log once every request the server has seen before this call is in it: a request for a fresh path
    /// is sent and answered, and the log is read once it holds that request. nginx runs here as one process whose
    /// event loop handles connections in the order they became ready, and the marker request takes at least two
    /// turns of that loop (accept, then read), so a request a client gave up on earlier (logged when nginx notices
    /// the closed connection) is logged before it.
    public func settledAccessLog() throws -> [String] {
        let marker = "/settled-\(UInt64.random(in: 0...UInt64.max))"
        try Self.get(port: port, path: marker)
        let lines = requests(marker, atLeast: 1)
        guard !lines.isEmpty else { throw NginxError(message: "the request for \(marker) was never logged") }
        return accessLog()
    }

    /// Sends `GET path` over a fresh connection and reads the answer to its end.
    static func get(port: Int, path: String) throws {
        guard let socket = connected(port) else { throw NginxError(message: "cannot connect to port \(port)") }
        defer { close(socket) }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, 0) }) == request.count else {
            throw NginxError(message: "cannot send a request to port \(port)")
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {  // HTTP/1.0: the server closes the connection after the answer
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { return }
            guard count > 0 else { throw NginxError(message: "reading an answer from port \(port) failed") }
        }
    }

    /// Writes `data` at `path` under the served folder.
    public func put(_ path: String, _ data: Data) throws {
        let file = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }

    /// A port the kernel has just handed out as free (bound to port 0, then released).
    public static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw NginxError(message: "no socket") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else { throw NginxError(message: "cannot bind a loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    public static func accepts(_ port: Int) -> Bool {
        guard let socket = connected(port) else { return false }
        close(socket)
        return true
    }

    /// A socket connected to `port` on loopback (the caller closes it), or nil when nothing accepts there.
    static func connected(_ port: Int) -> Int32? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(socket)
            return nil
        }
        return socket
    }
}

public struct NginxError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
