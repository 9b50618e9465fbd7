// LZ4's raw block format (Parquet's LZ4_RAW codec, what pyarrow and Polars write for "lz4"): sequences of a token,
// literals and a back-reference. Every length and offset is checked, so a damaged page is an error, never a read
// outside the buffers.

enum LZ4Block {
    struct Error: Swift.Error, CustomStringConvertible {
        let description: String
    }

    /// The bytes `block` holds, which must be `expected` many (the page header's uncompressed size).
    static func decompress(_ block: [UInt8], expected: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: expected)
        var written = 0
        var position = 0
        /// A length that goes on in bytes of 255 after its 4 bits are all set.
        func length(_ start: Int) throws -> Int {
            var total = start
            guard start == 15 else { return total }
            while true {
                guard position < block.count else { throw Error(description: "a cut length") }
                let byte = Int(block[position])
                position += 1
                total += byte
                guard total <= expected else { throw Error(description: "a length past the end") }
                if byte != 255 { return total }
            }
        }
        while position < block.count {
            let token = Int(block[position])
            position += 1
            let literals = try length(token >> 4)
            guard literals <= block.count - position, literals <= expected - written else {
                throw Error(description: "literals past the end")
            }
            for index in 0..<literals { output[written + index] = block[position + index] }
            position += literals
            written += literals
            // The last sequence ends with its literals.
            if position == block.count { break }
            guard 2 <= block.count - position else { throw Error(description: "a cut offset") }
            let offset = Int(block[position]) | Int(block[position + 1]) << 8
            position += 2
            let count = try length(token & 15) + 4
            guard offset > 0, offset <= written, count <= expected - written else {
                throw Error(description: "a copy from outside the output")
            }
            // Byte by byte: a copy may overlap the bytes it writes (a run).
            for index in 0..<count { output[written + index] = output[written - offset + index] }
            written += count
        }
        guard written == expected else { throw Error(description: "\(written) of \(expected) bytes") }
        return output
    }
}
