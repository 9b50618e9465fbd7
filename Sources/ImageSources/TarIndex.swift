// The members of a tar archive (POSIX ustar, with GNU long names and pax `path` records, as webdataset shards and
// GNU tar write them), found by reading headers only: member data is read in place, never extracted.

/// Member name → where its bytes lie in the archive.
public struct TarIndex: Sendable {
    /// Regular files in archive order.
    public let names: [String]
    public let members: [String: Range<Int>]
    /// Why indexing stopped early (a truncated or damaged archive), if it did; the members before it are usable.
    public let problem: String?

    public init(bytes: UnsafeRawBufferPointer) {
        var names: [String] = []
        var members: [String: Range<Int>] = [:]
        var problem: String?
        var offset = 0
        var longName: String?
        var paxPath: String?
        func text(_ at: Int, _ length: Int) -> String {
            let field = bytes[at..<(at + length)]
            let end = field.firstIndex(of: 0) ?? field.endIndex
            return String(decoding: field[..<end], as: UTF8.self)
        }
        while offset + 512 <= bytes.count {
            if bytes[offset..<(offset + 512)].allSatisfy({ $0 == 0 }) { break }  // end-of-archive blocks
            guard let size = Self.number(bytes, at: offset + 124, length: 12) else {
                problem = Self.compressed(bytes, at: offset) ?? "a damaged header at byte \(offset)"
                break
            }
            guard Self.checksumMatches(bytes, header: offset) else {
                problem = Self.compressed(bytes, at: offset) ?? "a header with a wrong checksum at byte \(offset)"
                break
            }
            let type = bytes[offset + 156]
            var name = text(offset, 100)
            if bytes[(offset + 257)..<(offset + 262)].elementsEqual("ustar".utf8) {
                let prefix = text(offset + 345, 155)
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            let dataStart = offset + 512
            // Sizes anywhere near Int.max are damage; refused before the arithmetic below could overflow.
            guard size <= Int.max / 4 else {
                problem = "a damaged size field at byte \(offset)"
                break
            }
            let dataEnd = dataStart + size
            let next = dataStart + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "L"):  // GNU: the next member's name
                guard dataEnd <= bytes.count else { problem = "truncated in a long name"; break }
                longName = String(decoding: bytes[dataStart..<dataEnd].prefix { $0 != 0 }, as: UTF8.self)
            case UInt8(ascii: "x"):  // pax: records "length key=value\n" for the next member
                guard dataEnd <= bytes.count else { problem = "truncated in a pax header"; break }
                paxPath = Self.paxPath(bytes[dataStart..<dataEnd]) ?? paxPath
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                let member = paxPath ?? longName ?? name
                longName = nil
                paxPath = nil
                guard dataEnd <= bytes.count else {
                    problem = "truncated in member \(member)"
                    break
                }
                if members[member] == nil { names.append(member) }
                members[member] = dataStart..<dataEnd
            default:  // directories, links, global pax headers: nothing to read
                longName = nil
                paxPath = nil
            }
            if problem != nil { break }
            offset = next
        }
        if problem == nil, offset + 512 > bytes.count, offset < bytes.count {
            problem = Self.compressed(bytes, at: offset) ?? "truncated after byte \(offset)"
        }
        self.names = names
        self.members = members
        self.problem = problem
    }

    /// An octal field, or GNU's base-256 form for sizes over 8 GiB.
    static func number(_ bytes: UnsafeRawBufferPointer, at: Int, length: Int) -> Int? {
        if bytes[at] & 0x80 != 0 {
            var value = 0
            for index in (at + 1)..<(at + length) {
                guard value < Int.max >> 8 else { return nil }
                value = value << 8 | Int(bytes[index])
            }
            return value
        }
        var value = 0
        var seen = false
        for index in at..<(at + length) {
            let byte = bytes[index]
            if byte == 0 || byte == UInt8(ascii: " ") {
                if seen { break } else { continue }
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value < Int.max >> 3 else { return nil }
            value = value << 3 | Int(byte - UInt8(ascii: "0"))
            seen = true
        }
        return value
    }

    /// At the start of the file, what a compressed file (a `.tar.gz`, say) is, in place of a damaged header.
    static func compressed(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> String? {
        guard offset == 0 else { return nil }
        let magics: [(String, [UInt8])] = [
            ("gzip", [0x1F, 0x8B]), ("bzip2", Array("BZh".utf8)), ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]),
            ("zstd", [0x28, 0xB5, 0x2F, 0xFD]),
        ]
        guard let (name, _) = magics.first(where: { bytes.starts(with: $0.1) }) else { return nil }
        return "a \(name)-compressed file, not a tar archive: shards are read in place, so decompress it first"
    }

    /// The header's checksum: the sum of its bytes with the checksum field read as spaces.
    static func checksumMatches(_ bytes: UnsafeRawBufferPointer, header: Int) -> Bool {
        guard let stored = number(bytes, at: header + 148, length: 8) else { return false }
        var sum = 0
        for index in header..<(header + 512) {
            sum += (index >= header + 148 && index < header + 156) ? 32 : Int(bytes[index])
        }
        return sum == stored
    }

    static func paxPath(_ records: Slice<UnsafeRawBufferPointer>) -> String? {
        var path: String?
        var rest = records[...]
        while let space = rest.firstIndex(of: UInt8(ascii: " ")),
            let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
            length > space - rest.startIndex + 1, length <= rest.endIndex - rest.startIndex
        {
            let record = rest[(space + 1)..<(rest.startIndex + length - 1)]  // without the newline
            if let equals = record.firstIndex(of: UInt8(ascii: "=")),
                String(decoding: record[record.startIndex..<equals], as: UTF8.self) == "path"
            {
                path = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            rest = rest[(rest.startIndex + length)...]
        }
        return path
    }
}
