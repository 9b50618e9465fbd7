// Which IP addresses a worker refuses to fetch from unless told otherwise: those that reach the worker itself or
// the networks behind it (loopback, private, link-local, CGNAT, multicast, unspecified and reserved ranges, in IPv4
// and IPv6, with IPv4 addresses embedded in IPv6 judged as IPv4).

#if canImport(Glibc)
    import Glibc
#endif

/// Classifies IP addresses by the range they fall in.
public enum PrivateAddress {
    /// The kind of non-public range `address` (4 or 16 bytes, network order) falls in, or nil for a public
    /// address.
    public static func range(of address: [UInt8]) -> String? {
        switch address.count {
        case 4: return ipv4(address)
        case 16: return ipv6(address)
        default: return "not an IP address"
        }
    }

    /// The range of the address of `socket` (AF_INET or AF_INET6, `length` bytes), and the address as text.
    public static func classify(_ socket: UnsafeRawPointer, length: Int) -> (range: String?, text: String) {
        guard length >= MemoryLayout<sa_family_t>.size else { return ("a truncated address", "?") }
        let family = Int32(socket.load(as: sa_family_t.self))
        switch family {
        case AF_INET where length >= MemoryLayout<sockaddr_in>.size:
            let bytes = withUnsafeBytes(of: socket.load(as: sockaddr_in.self).sin_addr) { Array($0) }
            return (range(of: bytes), text(bytes))
        case AF_INET6 where length >= MemoryLayout<sockaddr_in6>.size:
            let bytes = withUnsafeBytes(of: socket.load(as: sockaddr_in6.self).sin6_addr) { Array($0) }
            return (range(of: bytes), text(bytes))
        default:
            return ("an address of family \(family)", "?")
        }
    }

    /// `address` as inet_ntop writes it.
    public static func text(_ address: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = address.count == 4 ? AF_INET : AF_INET6
        let written = address.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func ipv4(_ a: [UInt8]) -> String? {
        switch (a[0], a[1], a[2]) {
        case (0, _, _): return a == [0, 0, 0, 0] ? "unspecified" : "reserved (0.0.0.0/8)"
        case (10, _, _): return "private"
        case (100, 64...127, _): return "shared address space (CGNAT)"
        case (127, _, _): return "loopback"
        case (169, 254, _): return "link-local"
        case (172, 16...31, _): return "private"
        case (192, 0, 0): return "reserved (192.0.0.0/24)"
        case (192, 168, _): return "private"
        case (198, 18...19, _): return "reserved (198.18.0.0/15)"
        case (192, 0, 2), (198, 51, 100), (203, 0, 113): return "documentation"
        case (224...239, _, _): return "multicast"
        case (240...255, _, _): return a == [255, 255, 255, 255] ? "broadcast" : "reserved (240.0.0.0/4)"
        default: return nil
        }
    }

    static func ipv6(_ a: [UInt8]) -> String? {
        let first10Zero = a[0..<10].allSatisfy { $0 == 0 }
        if first10Zero && a[10] == 0xff && a[11] == 0xff { return ipv4(Array(a[12..<16])) }  // ::ffff:a.b.c.d
        if a[0..<12].allSatisfy({ $0 == 0 }) {
            if a[12..<15].allSatisfy({ $0 == 0 }) {
                if a[15] == 0 { return "unspecified" }
                if a[15] == 1 { return "loopback" }
            }
            return ipv4(Array(a[12..<16]))  // ::a.b.c.d, IPv4-compatible (deprecated)
        }
        if a[0..<12] == [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] { return ipv4(Array(a[12..<16])) }  // NAT64
        if a[0..<6] == [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01] { return "local-use NAT64 (64:ff9b:1::/48)" }
        if a[0..<4] == [0x20, 0x01, 0x00, 0x00] { return "Teredo (2001::/32)" }
        if a[0] == 0x20 && a[1] == 0x02 { return ipv4(Array(a[2..<6])) }  // 6to4
        if a[0] & 0xfe == 0xfc { return "unique local (private)" }
        if a[0] == 0xfe && a[1] & 0xc0 == 0x80 { return "link-local" }
        if a[0] == 0xfe && a[1] & 0xc0 == 0xc0 { return "site-local" }
        if a[0] == 0xff { return "multicast" }
        if a[0] == 0x01 && a[1..<8].allSatisfy({ $0 == 0 }) { return "discard-only (100::/64)" }
        if a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8 { return "documentation (2001:db8::/32)" }
        return nil
    }
}
