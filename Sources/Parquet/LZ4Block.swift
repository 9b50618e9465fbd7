// LZ4's raw block format (Parquet's LZ4_RAW codec, what pyarrow and Polars write for "lz4"): sequences of a token,
// literals and a back-reference. Every length and offset is checked, so a damaged page is an error, never a read
// outside the buffers.

enum LZ4Block {
    /// The bytes `block` holds, which must be `expected` many (the page header's uncompressed size).
    static func decompress(_ block: [UInt8], expected: Int) throws -> [UInt8] {
        var output = BlockOutput(size: expected)
        var position = 0
        /// A length that goes on in bytes of 255 after its 4 bits are all set.
        func length(_ start: Int) throws -> Int {
            var total = start
            guard start == 15 else { return total }
            while true {
                guard position < block.count else { throw BlockOutput.Error(description: "a cut length") }
                let byte = Int(block[position])
                position += 1
                total += byte
                guard total <= expected else { throw BlockOutput.Error(description: "a length past the end") }
                if byte != 255 { return total }
            }
        }
        while position < block.count {
            let token = Int(block[position])
            position += 1
            let literals = try length(token >> 4)
            try output.literal(block, from: position, count: literals)
            position += literals
            // The last sequence ends with its literals.
            if position == block.count { break }
            guard 2 <= block.count - position else { throw BlockOutput.Error(description: "a cut offset") }
            let offset = Int(block[position]) | Int(block[position + 1]) << 8
            position += 2
            try output.copy(offset: offset, count: try length(token & 15) + 4)
        }
        return try output.finished()
    }
}
