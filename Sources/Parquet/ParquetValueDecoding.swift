// The encodings of Parquet's levels and values: the RLE/bit-packed hybrid (levels, dictionary indices, RLE
// booleans), PLAIN, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT. Each reads
// `bytes[start..<end]`, checks every length against it, and produces exactly the count asked for or throws.

/// The bytes of one page section and a position in them.
struct PageBytes {
    let bytes: [UInt8]
    var position: Int
    let end: Int

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - position }

    mutating func byte() throws -> UInt8 {
        guard position < end else { throw ParquetError(description: "a page ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw ParquetError(description: "a page ends early") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    /// A little-endian unsigned integer of `count` bytes (at most 8).
    mutating func littleEndian(_ count: Int) throws -> UInt64 {
        let slice = try take(count)
        var value: UInt64 = 0
        for (index, byte) in slice.enumerated() { value |= UInt64(byte) << (8 * index) }
        return value
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw ParquetError(description: "a varint over 64 bits") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func zigzag() throws -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A count that must fit `limit`.
    mutating func count(atMost limit: Int) throws -> Int {
        let raw = try varint()
        guard raw <= UInt64(limit) else { throw ParquetError(description: "a count of \(raw) where \(limit) fit") }
        return Int(raw)
    }

    /// `width` bits (at most 64) starting `bit` bits after `position`, least significant first.
    func bits(at bit: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        var done = 0
        var bit = bit
        while done < width {
            let byte = UInt64(bytes[position + bit >> 3]) >> UInt64(bit & 7)
            let got = min(8 - (bit & 7), width - done)
            value |= (byte & ((1 << UInt64(got)) - 1)) << UInt64(done)
            done += got
            bit += got
        }
        return value
    }
}

enum ValueDecoding {
    /// `count` values of the RLE/bit-packed hybrid of `bitWidth` bits (at most 32).
    static func hybrid(_ input: inout PageBytes, bitWidth: Int, count: Int) throws -> [UInt32] {
        guard (0...32).contains(bitWidth) else { throw ParquetError(description: "a bit width of \(bitWidth)") }
        var values: [UInt32] = []
        values.reserveCapacity(count)
        while values.count < count {
            let header = try input.varint()
            if header & 1 == 0 {
                let run = Int(clamping: header >> 1)
                let value = UInt32(truncatingIfNeeded: try input.littleEndian((bitWidth + 7) / 8))
                values.append(contentsOf: repeatElement(value, count: min(run, count - values.count)))
            } else {
                // Groups of 8; a writer may leave the bytes of the last group's unused values out.
                let groups = Int(clamping: header >> 1)
                guard groups <= input.remaining || bitWidth == 0 else {
                    throw ParquetError(description: "a bit-packed run past the page's end")
                }
                let wanted = min(min(groups, count) * 8, count - values.count)
                let available = bitWidth == 0 ? wanted : min(wanted, input.remaining * 8 / bitWidth)
                guard available == wanted else { throw ParquetError(description: "a bit-packed run cut short") }
                for index in 0..<wanted {
                    values.append(UInt32(truncatingIfNeeded: input.bits(at: index * bitWidth, width: bitWidth)))
                }
                input.position += min(groups * bitWidth, input.remaining)
            }
        }
        return values
    }

    /// DELTA_BINARY_PACKED integers: a header, then blocks of a least delta and miniblocks of packed deltas. The
    /// header's count must be at most `limit`.
    static func deltaBinaryPacked(_ input: inout PageBytes, limit: Int) throws -> [Int64] {
        let blockSize = try input.count(atMost: 1 << 20)
        let miniblocks = try input.count(atMost: blockSize)
        let total = try input.count(atMost: limit)
        var value = try input.zigzag()
        guard blockSize > 0, blockSize % 128 == 0, miniblocks > 0, blockSize % miniblocks == 0,
            (blockSize / miniblocks) % 32 == 0
        else { throw ParquetError(description: "a DELTA_BINARY_PACKED block of \(blockSize) in \(miniblocks)") }
        let perMiniblock = blockSize / miniblocks
        var values: [Int64] = []
        values.reserveCapacity(total)
        if total > 0 { values.append(value) }
        while values.count < total {
            let least = try input.zigzag()
            let widths = Array(try input.take(miniblocks))
            for width in widths where values.count < total {
                guard width <= 64 else { throw ParquetError(description: "a delta bit width of \(width)") }
                let bytes = perMiniblock * Int(width) / 8
                guard bytes <= input.remaining else { throw ParquetError(description: "a page ends early") }
                for index in 0..<min(perMiniblock, total - values.count) {
                    let delta = input.bits(at: index * Int(width), width: Int(width))
                    value = value &+ least &+ Int64(bitPattern: delta)
                    values.append(value)
                }
                input.position += bytes
            }
        }
        return values
    }

    /// `count` byte strings of DELTA_LENGTH_BYTE_ARRAY: their lengths, delta-packed, then their bytes.
    static func deltaLengthByteArrays(_ input: inout PageBytes, count: Int) throws -> [ArraySlice<UInt8>] {
        let lengths = try deltaBinaryPacked(&input, limit: count)
        guard lengths.count == count else { throw ParquetError(description: "\(lengths.count) of \(count) lengths") }
        return try lengths.map { length in
            guard length >= 0, length <= Int64(input.remaining) else {
                throw ParquetError(description: "a string of \(length) bytes past the page's end")
            }
            return try input.take(Int(length))
        }
    }

    /// `count` byte strings of DELTA_BYTE_ARRAY: each shares a prefix of the one before and adds its suffix.
    static func deltaByteArrays(_ input: inout PageBytes, count: Int) throws -> [[UInt8]] {
        let prefixes = try deltaBinaryPacked(&input, limit: count)
        let suffixes = try deltaLengthByteArrays(&input, count: count)
        guard prefixes.count == count else { throw ParquetError(description: "\(prefixes.count) of \(count) prefixes") }
        var previous: [UInt8] = []
        var values: [[UInt8]] = []
        values.reserveCapacity(count)
        for (prefix, suffix) in zip(prefixes, suffixes) {
            guard prefix >= 0, prefix <= Int64(previous.count) else {
                throw ParquetError(description: "a prefix of \(prefix) bytes of a \(previous.count)-byte string")
            }
            previous = Array(previous[0..<Int(prefix)]) + suffix
            values.append(previous)
        }
        return values
    }

    /// `count` values of `width` bytes each, their bytes split into `width` streams (BYTE_STREAM_SPLIT).
    static func byteStreamSplit(_ input: inout PageBytes, width: Int, count: Int) throws -> [[UInt8]] {
        let (total, overflow) = width.multipliedReportingOverflow(by: count)
        guard !overflow, total <= input.remaining else { throw ParquetError(description: "a page ends early") }
        let base = input.position
        input.position += total
        return (0..<count).map { index in (0..<width).map { input.bytes[base + $0 * count + index] } }
    }
}
