// The entries of a ZIP archive (with ZIP64), read from its central directory: torch.save's (stored) and image
// archives' (stored or deflated). `ZipDirectory` reads the directory through any reader of byte ranges, a mapped
// file's or a server's; `ZipArchive` is a mapped file's, with each member's data located through its local header.

/// The central directory of a ZIP file, read through `read`, which gives the bytes of a range of the file.
public enum ZipDirectory {
    /// One member as the central directory describes it.
    public struct Entry: Sendable, Equatable {
        public let name: String
        /// 0 stored, 8 deflated; other methods are listed but not readable here.
        public let method: Int
        /// The general-purpose flags (bit 0: encrypted; bit 3: sizes and CRC in a descriptor after the data).
        public let flags: Int
        /// The CRC-32 of the uncompressed bytes.
        public let crc32: UInt32
        /// The member's bytes as stored in the file, and uncompressed.
        public let packedSize: Int
        public let uncompressedSize: Int
        /// Where the member's local header starts; its data follows that header's name and extra field.
        public let localHeader: Int
    }

    /// The end-of-central-directory record lies in the last 22 bytes plus at most a 64 KiB comment.
    public static let tailBytes = 22 + 65_535

    /// The longest central directory read, in bytes (about ten million members).
    public static let maximumDirectoryBytes = 1 << 30

    /// The entries of the ZIP file of `size` bytes, in directory order. `read` is asked for the file's last
    /// `tailBytes` (or all of it, when shorter), perhaps a ZIP64 end record, and the directory, and gives exactly the
    /// range asked for or throws.
    ///
    /// - Throws: `TensorError.badHeader` naming `file` and what is wrong; what `read` throws.
    public static func entries(file: String, size: Int, read: (Range<Int>) throws -> [UInt8]) throws -> [Entry] {
        func fail(_ reason: String) -> TensorError {
            .badHeader(file: file, reason: "not a readable ZIP archive: \(reason)")
        }
        let tailStart = max(0, size - tailBytes)
        let tail = try read(tailStart..<size)
        let tailFields = Fields(tail, base: tailStart, fail: fail)
        var end = -1
        var position = tail.count - 22
        while position >= 0 {
            if try tailFields.u32(tailStart + position) == 0x0605_4B50 {
                end = tailStart + position
                break
            }
            position -= 1
        }
        guard end >= 0 else { throw fail("no end-of-central-directory record") }
        var count = try tailFields.u16(end + 10), directorySize = try tailFields.u32(end + 12)
        var directory = try tailFields.u32(end + 16)
        // A ZIP64 locator lies just before the end record: in the tail, or (after a comment of nearly 64 KiB) before it.
        let locator =
            end < 20
            ? nil
            : end - 20 >= tailStart
                ? Fields(Array(tail[(end - 20 - tailStart)..<(end - tailStart)]), base: end - 20, fail: fail)
                : Fields(try read((end - 20)..<end), base: end - 20, fail: fail)
        if count == 0xFFFF || directory == 0xFFFF_FFFF || directorySize == 0xFFFF_FFFF, let locator,
            try locator.u32(end - 20) == 0x0706_4B50
        {
            let recordStart = try locator.u64(end - 20 + 8)
            guard recordStart <= size - 56 else { throw fail("the ZIP64 end record lies past the end") }
            let recordBytes =
                recordStart >= tailStart
                ? Array(tail[(recordStart - tailStart)..<(recordStart - tailStart + 56)])
                : try read(recordStart..<(recordStart + 56))
            let record = Fields(recordBytes, base: recordStart, fail: fail)
            guard try record.u32(recordStart) == 0x0606_4B50 else { throw fail("bad ZIP64 end record") }
            count = try record.u64(recordStart + 32)
            directorySize = try record.u64(recordStart + 40)
            directory = try record.u64(recordStart + 48)
        }
        guard directory <= size, directorySize <= size - directory else {
            throw fail("the central directory runs past the end (truncated file?)")
        }
        guard directorySize <= maximumDirectoryBytes else {
            throw fail("a central directory of \(directorySize) bytes, over the \(maximumDirectoryBytes)-byte limit")
        }
        // Each entry takes at least 46 bytes: a count beyond that is damage, not a reason to reserve memory.
        guard count <= directorySize / 46 else {
            throw fail("\(count) entries cannot fit a central directory of \(directorySize) bytes")
        }
        // What the tail holds of the directory is taken from it; only the rest is read.
        let directoryEnd = directory + directorySize
        let directoryBytes =
            directory >= tailStart
            ? Array(tail[(directory - tailStart)..<(directoryEnd - tailStart)])
            : directoryEnd > tailStart
                ? try read(directory..<tailStart) + tail[0..<(directoryEnd - tailStart)]
                : try read(directory..<directoryEnd)
        let fields = Fields(directoryBytes, base: directory, fail: fail)
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var cursor = directory
        for _ in 0..<count {
            guard try fields.u32(cursor) == 0x0201_4B50 else { throw fail("bad central directory entry at \(cursor)") }
            let flags = try fields.u16(cursor + 8), method = try fields.u16(cursor + 10)
            let crc = UInt32(try fields.u32(cursor + 16))
            var size = try fields.u32(cursor + 20), uncompressed = try fields.u32(cursor + 24)
            let nameLength = try fields.u16(cursor + 28), extraLength = try fields.u16(cursor + 30),
                commentLength = try fields.u16(cursor + 32)
            var localHeader = try fields.u32(cursor + 42)
            let name = String(decoding: try fields.bytes(cursor + 46, count: nameLength), as: UTF8.self)
            // ZIP64 extra field: the 64-bit values replace the 32-bit ones that are all ones, in order, within the
            // field's own length.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let tag = try fields.u16(extra), length = try fields.u16(extra + 2)
                if tag == 0x0001 {
                    var field = extra + 4
                    let fieldEnd = min(extra + 4 + length, extraEnd)
                    func next() throws -> Int {
                        guard field + 8 <= fieldEnd else { throw fail("a ZIP64 extra field of \(name) is too short") }
                        defer { field += 8 }
                        return try fields.u64(field)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next() }
                    if size == 0xFFFF_FFFF { size = try next() }
                    if localHeader == 0xFFFF_FFFF { localHeader = try next() }
                }
                extra += 4 + length
            }
            // A member's local header and data come before the directory.
            guard localHeader <= directory - 30, size <= directory - 30 - localHeader else {
                throw fail("entry \(name) runs past the end of the members (truncated or damaged file?)")
            }
            entries.append(
                Entry(
                    name: name, method: method, flags: flags, crc32: crc, packedSize: size,
                    uncompressedSize: uncompressed, localHeader: localHeader))
            cursor += 46 + nameLength + extraLength + commentLength
        }
        return entries
    }

    /// A member's local header: the 30 bytes before its name, extra field and data.
    public struct LocalHeader: Sendable, Equatable {
        /// The general-purpose flags (bit 0: encrypted; bit 3: sizes and CRC in a descriptor after the data).
        public let flags: Int
        /// 0 stored, 8 deflated.
        public let method: Int
        /// The CRC-32 and sizes as the header holds them (zeros with flag bit 3; all ones where ZIP64 holds them).
        public let crc32: UInt32
        public let packedSize: Int
        public let uncompressedSize: Int
        public let nameLength: Int
        /// Where the data starts, from the header's start: past the name and the extra field.
        public let dataOffset: Int

        public static let size = 30

        /// The header at the start of `bytes` (at least `size` of them); nil without the local header's signature.
        public init?(_ bytes: ArraySlice<UInt8>) {
            guard bytes.count >= Self.size else { return nil }
            let fields = Fields(Array(bytes.prefix(Self.size)), base: 0) {
                .badHeader(file: "", reason: $0)
            }
            guard let signature = try? fields.u32(0), signature == 0x0403_4B50, let flags = try? fields.u16(6),
                let method = try? fields.u16(8), let crc = try? fields.u32(14), let packed = try? fields.u32(18),
                let size = try? fields.u32(22), let nameLength = try? fields.u16(26), let extra = try? fields.u16(28)
            else { return nil }
            self.flags = flags
            self.method = method
            crc32 = UInt32(crc)
            packedSize = packed
            uncompressedSize = size
            self.nameLength = nameLength
            dataOffset = Self.size + nameLength + extra
        }
    }

    /// Little-endian fields of `bytes`, which hold the file's bytes from `base`; a field outside them is damage.
    struct Fields {
        let bytes: [UInt8]
        let base: Int
        let fail: (String) -> TensorError

        init(_ bytes: [UInt8], base: Int, fail: @escaping (String) -> TensorError) {
            self.bytes = bytes
            self.base = base
            self.fail = fail
        }

        func bytes(_ at: Int, count: Int) throws -> ArraySlice<UInt8> {
            let start = at - base
            guard start >= 0, count >= 0, start <= bytes.count - count else {
                throw fail("a field at \(at) is past the end")
            }
            return bytes[start..<(start + count)]
        }

        func u16(_ at: Int) throws -> Int {
            try bytes(at, count: 2).reversed().reduce(0) { $0 << 8 | Int($1) }
        }

        func u32(_ at: Int) throws -> Int {
            try bytes(at, count: 4).reversed().reduce(0) { $0 << 8 | Int($1) }
        }

        func u64(_ at: Int) throws -> Int {
            let value = try bytes(at, count: 8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard value < UInt64(Int.max) else { throw fail("a 64-bit field is out of range") }
            return Int(value)
        }
    }
}

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
        let directory = try ZipDirectory.entries(file: path, size: bytes.count) { Array(bytes[$0]) }
        var entries: [String: Entry] = [:]
        var names: [String] = []
        for entry in directory {
            let header = entry.localHeader
            guard header <= bytes.count - ZipDirectory.LocalHeader.size,
                let local = ZipDirectory.LocalHeader(
                    ArraySlice(bytes[header..<(header + ZipDirectory.LocalHeader.size)]))
            else { throw fail("bad local header for \(entry.name)") }
            let start = header + local.dataOffset
            guard entry.packedSize <= bytes.count, start + entry.packedSize <= bytes.count else {
                throw fail("entry \(entry.name) runs past the end (truncated file?)")
            }
            if entries[entry.name] == nil { names.append(entry.name) }
            entries[entry.name] = Entry(
                data: start..<(start + entry.packedSize), method: entry.method,
                uncompressedSize: entry.uncompressedSize, crc32: entry.crc32)
        }
        self.entries = entries
        self.names = names
    }
}
