// ZIP archives written byte by byte, for the shapes the usual tools do not make: stored entries as torch.save
// writes them, and local headers with extra fields longer than any tool writes.

import Foundation

/// Writes a ZIP archive of stored (uncompressed) entries, in name order, as torch.save does.
public enum StoredZip {
    /// The archive of `entries`; each local header carries an extra field of `localExtra` bytes (an unknown tag
    /// and zeros) that the central directory does not repeat.
    public static func bytes(_ entries: [String: [UInt8]], localExtra: Int = 0) -> Data {
        var out: [UInt8] = [], directory: [UInt8] = []
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
        let extra =
            localExtra >= 4 ? u16(0xCAFE) + u16(localExtra - 4) + [UInt8](repeating: 0, count: localExtra - 4) : []
        for (name, data) in entries.sorted(by: { $0.key < $1.key }) {
            let offset = out.count, nameBytes = Array(name.utf8)
            let crc = Int(crc32(data))
            out +=
                u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u32(0) + u32(crc) + u32(data.count) + u32(data.count)
                + u16(nameBytes.count) + u16(extra.count) + nameBytes + extra + data
            directory +=
                u32(0x0201_4B50) + u16(20) + u16(20) + u16(0) + u16(0) + u32(0) + u32(crc) + u32(data.count)
                + u32(data.count) + u16(nameBytes.count) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset)
                + nameBytes
        }
        let start = out.count
        out +=
            directory + u32(0x0605_4B50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count)
            + u32(directory.count) + u32(start) + u16(0)
        return Data(out)
    }

    /// The CRC-32 (IEEE, reflected) of `bytes`, bit by bit: small archives only.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
