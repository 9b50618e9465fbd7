// The entries of a ZIP archive (with ZIP64), read from its central directory: torch.save's (stored) and image
// archives' (stored or deflated).

/// A read-only view of a ZIP file's entries.
public struct ZipArchive: Sendable {
    /// One member: where its (possibly compressed) bytes lie in the file, how they are stored, and its size.
    public struct Entry: Sendable {
        /// The byte range of the member's data within the file.
        public let data: Range<Int>
        /// 0 stored, 8 deflated; other methods are listed but not readable here.
        public let method: Int
        public let uncompressedSize: Int
        /// The CRC-32 of the uncompressed bytes.
        public let crc32: UInt32
    }

    public let file: MappedFile
    /// Entry name → entry.
    public let entries: [String: Entry]
    /// Entry names in central-directory order.
    public let names: [String]

    public init(file: MappedFile) throws {
        self.file = file
        let bytes = file.bytes, path = file.path
        func fail(_ reason: String) -> TensorError {
            .badHeader(file: path, reason: "not a readable ZIP archive: \(reason)")
        }
        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at <= bytes.count - 2 else { throw fail("a field at \(at) is past the end") }
            return Int(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian)
        }
        func u32(_ at: Int) throws -> Int {
            guard at >= 0, at <= bytes.count - 4 else { throw fail("a field at \(at) is past the end") }
            return Int(bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian)
        }
        func u64(_ at: Int) throws -> Int {
            guard at >= 0, at <= bytes.count - 8 else { throw fail("a field at \(at) is past the end") }
            let value = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian
            guard value < UInt64(Int.max) else { throw fail("a 64-bit field is out of range") }
            return Int(value)
        }
        // End of central directory: within the last 64 KiB + 22 bytes.
        var end = -1
        var position = bytes.count - 22
        while position >= max(0, bytes.count - 22 - 65_535) {
            if try u32(position) == 0x0605_4B50 {
                end = position
                break
            }
            position -= 1
        }
        guard end >= 0 else { throw fail("no end-of-central-directory record") }
        var count = try u16(end + 10), directory = try u32(end + 16)
        if count == 0xFFFF || directory == 0xFFFF_FFFF, end >= 20, try u32(end - 20) == 0x0706_4B50 {
            let record = try u64(end - 20 + 8)
            guard try u32(record) == 0x0606_4B50 else { throw fail("bad ZIP64 end record") }
            count = try u64(record + 32)
            directory = try u64(record + 48)
        }
        var entries: [String: Entry] = [:]
        var names: [String] = []
        var cursor = directory
        for _ in 0..<count {
            guard try u32(cursor) == 0x0201_4B50 else { throw fail("bad central directory entry at \(cursor)") }
            let method = try u16(cursor + 10)
            let crc = UInt32(try u32(cursor + 16))
            var size = try u32(cursor + 20), uncompressed = try u32(cursor + 24)
            let nameLength = try u16(cursor + 28), extraLength = try u16(cursor + 30),
                commentLength = try u16(cursor + 32)
            var localHeader = try u32(cursor + 42)
            guard cursor + 46 + nameLength <= bytes.count else { throw fail("an entry name runs past the end") }
            let name = String(decoding: bytes[(cursor + 46)..<(cursor + 46 + nameLength)], as: UTF8.self)
            // ZIP64 extra field: the 64-bit values replace the 32-bit ones that are all ones, in order.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let tag = try u16(extra), length = try u16(extra + 2)
                if tag == 0x0001 {
                    var field = extra + 4
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try u64(field); field += 8 }
                    if size == 0xFFFF_FFFF { size = try u64(field); field += 8 }
                    if localHeader == 0xFFFF_FFFF { localHeader = try u64(field) }
                }
                extra += 4 + length
            }
            guard try u32(localHeader) == 0x0403_4B50 else { throw fail("bad local header for \(name)") }
            let start = localHeader + 30 + (try u16(localHeader + 26)) + (try u16(localHeader + 28))
            guard size <= bytes.count, start + size <= bytes.count else {
                throw fail("entry \(name) runs past the end (truncated file?)")
            }
            if entries[name] == nil { names.append(name) }
            entries[name] = Entry(
                data: start..<(start + size), method: method, uncompressedSize: uncompressed, crc32: crc)
            cursor += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
        self.names = names
    }
}
