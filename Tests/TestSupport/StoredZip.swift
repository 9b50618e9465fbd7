// ZIP archives written byte by byte, for the shapes the usual tools do not make: stored entries as torch.save
// writes them, and local headers with extra fields longer than any tool writes.

import Foundation

/// Writes a ZIP archive of stored (uncompressed) entries, in name order, as torch.save does.
public enum StoredZip {
    /// The archive of `entries`; each local header carries an extra field of `localExtra` bytes (an unknown tag
    /// and zeros) that the central directory does not repeat. With `zip64`, every size and offset is in ZIP64 extra
    /// fields (all three in the directory's) and the directory is found through a ZIP64 end record; `comment` bytes
    /// of archive comment follow the end record.
    public static func bytes(
        _ entries: [String: [UInt8]], localExtra: Int = 0, zip64: Bool = false, comment: Int = 0
    ) -> Data {
        var out: [UInt8] = [], directory: [UInt8] = []
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
        func u64(_ v: Int) -> [UInt8] { u32(v & 0xFFFF_FFFF) + u32(v >> 32) }
        let unknown =
            localExtra >= 4 ? u16(0xCAFE) + u16(localExtra - 4) + [UInt8](repeating: 0, count: localExtra - 4) : []
        let version = zip64 ? 45 : 20, all = 0xFFFF_FFFF
        for (name, data) in entries.sorted(by: { $0.key < $1.key }) {
            let offset = out.count, nameBytes = Array(name.utf8)
            let crc = Int(crc32(data)), size = zip64 ? all : data.count
            let local = unknown + (zip64 ? u16(1) + u16(16) + u64(data.count) + u64(data.count) : [])
            out +=
                u32(0x0403_4B50) + u16(version) + u16(0) + u16(0) + u32(0) + u32(crc) + u32(size) + u32(size)
                + u16(nameBytes.count) + u16(local.count) + nameBytes + local + data
            let central = zip64 ? u16(1) + u16(24) + u64(data.count) + u64(data.count) + u64(offset) : []
            directory +=
                u32(0x0201_4B50) + u16(version) + u16(version) + u16(0) + u16(0) + u32(0) + u32(crc) + u32(size)
                + u32(size) + u16(nameBytes.count) + u16(central.count) + u16(0) + u16(0) + u16(0) + u32(0)
                + u32(zip64 ? all : offset) + nameBytes + central
        }
        let start = out.count
        out += directory
        if zip64 {
            let record = out.count
            out +=
                u32(0x0606_4B50) + u64(44) + u16(45) + u16(45) + u32(0) + u32(0) + u64(entries.count)
                + u64(entries.count) + u64(directory.count) + u64(start)
            out += u32(0x0706_4B50) + u32(0) + u64(record) + u32(1)
        }
        let count = zip64 ? 0xFFFF : entries.count
        out +=
            u32(0x0605_4B50) + u16(0) + u16(0) + u16(count) + u16(count) + u32(zip64 ? all : directory.count)
            + u32(zip64 ? all : start) + u16(comment) + [UInt8](repeating: UInt8(ascii: "c"), count: comment)
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
