// The members of a tar archive (POSIX ustar, with GNU long names and pax `path` records, as webdataset shards and
// GNU tar write them), found by reading headers only: member data is read in place, never extracted. `TarStream`
// reads the headers as an archive's bytes arrive, in pieces of any size (a shard streamed over HTTP); `TarIndex` is
// its result over a whole archive in memory (a mapped file).

/// Member name → where its bytes lie in the archive.
public struct TarIndex: Sendable {
    /// Regular files in archive order.
    public let names: [String]
    public let members: [String: Range<Int>]
    /// Why indexing stopped early (a truncated or damaged archive), if it did; the members before it are usable.
    public let problem: String?

    public init(bytes: UnsafeRawBufferPointer) {
        var stream = TarStream()
        stream.consume(bytes)
        self.init(stream.finished())
    }

    /// What `stream` found, once its archive has ended.
    public init(_ stream: TarStream) {
        names = stream.names
        members = stream.members
        problem = stream.problem
    }

    /// Why a header block read back for `size` bytes of member data is not that member's header, or nil when it
    /// is (a regular member of that size, its checksum right): a range listed earlier checked against what the
    /// archive holds now.
    public static func headerMismatch(_ header: UnsafeRawBufferPointer, size: Int) -> String? {
        guard isHeader(header), let stored = number(header, at: 124, length: 12) else { return "no tar header there" }
        guard [UInt8(ascii: "0"), 0, UInt8(ascii: "7")].contains(header[156]) else {
            return "the header there is not a regular member's"
        }
        guard stored == size else { return "the member there has \(stored) bytes, not \(size)" }
        return nil
    }

    /// Whether a 512-byte block is a tar header (of any member type): its size field a number, its checksum right.
    public static func isHeader(_ block: UnsafeRawBufferPointer) -> Bool {
        block.count == 512 && number(block, at: 124, length: 12) != nil && checksumMatches(block, header: 0)
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

    /// What a compressed file (a `.tar.gz`, say) is, from its first bytes, in place of a damaged header.
    static func compressed(_ start: UnsafeRawBufferPointer) -> String? {
        let magics: [(String, [UInt8])] = [
            ("gzip", [0x1F, 0x8B]), ("bzip2", Array("BZh".utf8)), ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]),
            ("zstd", [0x28, 0xB5, 0x2F, 0xFD]),
        ]
        guard let (name, _) = magics.first(where: { start.starts(with: $0.1) }) else { return nil }
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

    static func paxPath(_ records: UnsafeRawBufferPointer) -> String? {
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

/// A tar archive's headers, read as its bytes arrive: `consume` each piece in order (of any size), then `finished`
/// once the bytes run out. Member data is skipped, never held; only a header split between pieces and the data of
/// long-name and pax records (their first `maximumRecordBytes`) are copied.
public struct TarStream: Sendable {
    /// The most of a GNU long name or pax header held (a pax header of large extended attributes runs longer: its
    /// records past this are not read).
    public static let maximumRecordBytes = 1 << 20

    /// Regular files in archive order, and where their data lies (offsets from the archive's start).
    public private(set) var names: [String] = []
    public private(set) var members: [String: Range<Int>] = [:]
    /// Why reading stopped early, if it did.
    public private(set) var problem: String?
    /// Whether the end-of-archive blocks or a problem have been reached: later bytes are not read.
    public private(set) var ended = false
    /// The bytes consumed so far: where the next piece starts in the archive.
    public private(set) var offset = 0

    private enum State {
        /// Reading the header that starts at `start` (its first bytes in `partial` when pieces split it).
        case header(start: Int)
        /// A regular member's data, until `dataEnd`, then padding until `next`.
        case member(name: String, data: Range<Int>, next: Int)
        /// A GNU long name ("L") or pax header ("x"): its data is collected until `end`.
        case record(kind: UInt8, end: Int, next: Int)
        /// Skipping to the next header at `next`.
        case skip(next: Int)
    }

    private var state = State.header(start: 0)
    private var partial: [UInt8] = []
    private var record: [UInt8] = []
    private var longName: String?
    private var paxPath: String?

    public init() {}

    /// Reads the next piece of the archive. Does nothing once the archive has ended.
    public mutating func consume(_ piece: UnsafeRawBufferPointer) {
        var position = 0
        while position < piece.count, !ended {
            let available = piece.count - position
            switch state {
            case let .header(start):
                if partial.isEmpty && available >= 512 {
                    position += 512
                    offset += 512
                    readHeader(UnsafeRawBufferPointer(rebasing: piece[(position - 512)..<position]), at: start)
                } else {
                    let taken = min(512 - partial.count, available)
                    partial.append(contentsOf: piece[position..<(position + taken)])
                    position += taken
                    offset += taken
                    if partial.count == 512 {
                        let header = partial
                        partial = []
                        header.withUnsafeBytes { readHeader($0, at: start) }
                    }
                }
            case let .member(name, data, next):
                let taken = min(data.upperBound - offset, available)
                position += taken
                offset += taken
                if offset == data.upperBound {
                    add(name, data)
                    state = .skip(next: next)
                }
            case let .record(kind, end, next):
                let taken = min(end - offset, available)
                // Past the cap, the rest of the record is skipped (its complete records before it still count).
                let kept = min(taken, max(0, Self.maximumRecordBytes - record.count))
                record.append(contentsOf: piece[position..<(position + kept)])
                position += taken
                offset += taken
                if offset == end {
                    if kind == UInt8(ascii: "L") {
                        longName = String(decoding: record.prefix { $0 != 0 }, as: UTF8.self)
                    } else {
                        paxPath = record.withUnsafeBytes { TarIndex.paxPath($0) } ?? paxPath
                    }
                    record = []
                    state = .skip(next: next)
                }
            case let .skip(next):
                let taken = min(next - offset, available)
                position += taken
                offset += taken
            }
            if case let .skip(next) = state, offset == next { state = .header(start: next) }
        }
    }

    /// The stream, once the archive's bytes have run out: a member, record or header cut short is the problem.
    public func finished() -> TarStream {
        var stream = self
        guard !ended else { return stream }
        stream.ended = true
        switch state {
        case let .header(start) where !partial.isEmpty:
            let compressed = start == 0 ? partial.withUnsafeBytes { TarIndex.compressed($0) } : nil
            stream.problem = compressed ?? "truncated after byte \(start)"
        case .header, .skip:
            break  // an archive without end blocks, or ending in padding: complete
        case let .member(name, _, _):
            stream.problem = "truncated in member \(name)"
        case let .record(kind, _, _):
            stream.problem = kind == UInt8(ascii: "L") ? "truncated in a long name" : "truncated in a pax header"
        }
        return stream
    }

    private mutating func add(_ name: String, _ data: Range<Int>) {
        if members[name] == nil { names.append(name) }
        members[name] = data
    }

    private mutating func stop(_ reason: String) {
        problem = reason
        ended = true
    }

    /// Reads the 512-byte header that starts at `start` in the archive (`offset` is already past it).
    private mutating func readHeader(_ header: UnsafeRawBufferPointer, at start: Int) {
        if header.allSatisfy({ $0 == 0 }) {  // end-of-archive blocks
            ended = true
            return
        }
        let compressed = start == 0 ? TarIndex.compressed(header) : nil
        guard let size = TarIndex.number(header, at: 124, length: 12) else {
            return stop(compressed ?? "a damaged header at byte \(start)")
        }
        guard TarIndex.checksumMatches(header, header: 0) else {
            return stop(compressed ?? "a header with a wrong checksum at byte \(start)")
        }
        // Sizes anywhere near Int.max are damage; refused before the arithmetic below could overflow.
        guard size <= Int.max / 4 else { return stop("a damaged size field at byte \(start)") }
        func text(_ at: Int, _ length: Int) -> String {
            let field = header[at..<(at + length)]
            let end = field.firstIndex(of: 0) ?? field.endIndex
            return String(decoding: field[..<end], as: UTF8.self)
        }
        var name = text(0, 100)
        if header[257..<262].elementsEqual("ustar".utf8) {
            let prefix = text(345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        let dataStart = start + 512
        let dataEnd = dataStart + size
        let next = dataStart + (size + 511) / 512 * 512
        let type = header[156]
        switch type {
        case UInt8(ascii: "L"), UInt8(ascii: "x"):  // GNU: the next member's name; pax: records for the next member
            state = .record(kind: type, end: dataEnd, next: next)
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
            let member = paxPath ?? longName ?? name
            longName = nil
            paxPath = nil
            state = .member(name: member, data: dataStart..<dataEnd, next: next)
        default:  // directories, links, global pax headers: nothing to read
            longName = nil
            paxPath = nil
            state = .skip(next: next)
        }
        if case let .member(name, data, next) = state, data.isEmpty {
            add(name, data)
            state = .skip(next: next)
        }
        if case let .record(kind, end, next) = state, end == dataStart {  // an empty record
            if kind == UInt8(ascii: "L") { longName = "" }
            state = .skip(next: next)
        }
    }
}
