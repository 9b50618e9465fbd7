// Which addresses a worker refuses to fetch from by default, and that a refused URL sends no request at all.

import Foundation
import ImageSources
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct PrivateAddressTests {
    static func bytes(_ text: String) -> [UInt8] {
        if text.contains(":") {
            var address = in6_addr()
            precondition(inet_pton(AF_INET6, text, &address) == 1, text)
            return withUnsafeBytes(of: address) { Array($0) }
        }
        var address = in_addr()
        precondition(inet_pton(AF_INET, text, &address) == 1, text)
        return withUnsafeBytes(of: address) { Array($0) }
    }

    @Test(arguments: [
        ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
        ("172.31.255.255", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "link-local"),
        ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"), ("0.0.0.0", "unspecified"), ("0.1.2.3", "reserved"),
        ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"), ("192.0.0.8", "reserved"), ("198.18.0.1", "reserved"),
        ("::", "unspecified"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"), ("::127.0.0.1", "loopback"), ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::", "loopback"), ("fc00::1", "unique local"), ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local"), ("febf::1", "link-local"), ("fec0::1", "site-local"), ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"), ("192.0.2.7", "documentation"), ("203.0.113.9", "documentation"),
        ("64:ff9b:1::a00:1", "local-use NAT64"), ("2001:0:4136:e378::1", "Teredo"),
    ])
    func nonPublicAddressesAreNamed(_ address: String, _ range: String) {
        #expect(PrivateAddress.range(of: Self.bytes(address))?.contains(range) == true, "\(address)")
    }

    @Test(arguments: [
        "8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1", "169.253.1.1",
        "192.167.1.1", "11.0.0.1", "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ])
    func publicAddressesPass(_ address: String) {
        #expect(PrivateAddress.range(of: Self.bytes(address)) == nil, "\(address)")
    }

    @Test func aLoopbackURLIsRefusedWithoutARequest() throws {
        let server = try NginxServer()
        try server.put("/images/a.png", Data(repeating: 1, count: 100))
        let reader = ImageReader(fetch: FetchSettings(timeout: 5, attempts: 3, backoff: 0.01))
        let port = server.url("").split(separator: ":").last!
        for url in [
            server.url("/images/a.png"), "http://localhost:\(port)/images/a.png",
            "http://[::ffff:127.0.0.1]:\(port)/images/a.png", "http://0.0.0.0:\(port)/images/a.png",
            "http://127.1:\(port)/images/a.png",
        ] {
            #expect("\(url)") {
                try reader.bytes(of: url)
            } throws: { error in
                let error = error as? ImageSourceError
                return error?.reason.contains("--allow-private-urls") == true && error?.isTransient == false
            }
        }
        // The same server answers a worker allowed to reach it: the refusals above sent nothing.
        let allowed = ImageReader(fetch: FetchSettings(timeout: 5, attempts: 1, allowPrivateAddresses: true))
        #expect(try allowed.bytes(of: server.url("/images/a.png")).count == 100)
        let requests = try HTTPFetchTests.requests(server, "/images/a.png")
        #expect(requests.count == 1, "\(requests)")
    }
}
