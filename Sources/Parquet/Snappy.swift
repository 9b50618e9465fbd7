// Snappy's raw block format (Parquet's SNAPPY codec, the default of pyarrow, Spark and DuckDB): a varint length, then
// literals and back-references. Every length and offset is checked, so a damaged page is an error, never a read
// outside the buffers.

enum Snappy {
    /// The bytes `block` holds, which must be `expected` many (the page header's uncompressed size).
    static func decompress(_ block: [UInt8], expected: Int) throws -> [UInt8] {
        var position = 0
        var length = 0
        var shift = 0
        while true {
            guard position < block.count, shift <= 28 else { throw BlockOutput.Error(description: "a damaged length") }
            let byte = block[position]
            position += 1
            length |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard length == expected else {
            throw BlockOutput.Error(description: "\(length) bytes where the page header says \(expected)")
        }
        var output = BlockOutput(size: length)
        /// The next `count` bytes of the block as a little-endian integer.
        func integer(_ count: Int, _ what: String) throws -> Int {
            guard count <= block.count - position else { throw BlockOutput.Error(description: "a cut \(what)") }
            var value = 0
            for index in 0..<count { value |= Int(block[position + index]) << (8 * index) }
            position += count
            return value
        }
        while position < block.count {
            let tag = Int(block[position])
            position += 1
            switch tag & 3 {
            case 0:
                let short = tag >> 2
                let count = (short < 60 ? short : try integer(short - 59, "literal")) + 1
                try output.literal(block, from: position, count: count)
                position += count
            case 1:
                let low = try integer(1, "copy")
                try output.copy(offset: (tag >> 5) << 8 | low, count: 4 + (tag >> 2) & 7)
            case 2:
                try output.copy(offset: try integer(2, "copy"), count: 1 + tag >> 2)
            default:
                try output.copy(offset: try integer(4, "copy"), count: 1 + tag >> 2)
            }
        }
        return try output.finished()
    }
}
