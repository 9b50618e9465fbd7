// Snappy's raw block format (Parquet's SNAPPY codec, the default of pyarrow, Spark and DuckDB): a varint length, then
// literals and back-references. Every length and offset is checked, so a damaged page is an error, never a read
// outside the buffers.

enum Snappy {
    struct Error: Swift.Error, CustomStringConvertible {
        let description: String
    }

    /// The bytes `block` holds, which must be `expected` many (the page header's uncompressed size).
    static func decompress(_ block: [UInt8], expected: Int) throws -> [UInt8] {
        var position = 0
        var length = 0
        var shift = 0
        while true {
            guard position < block.count, shift <= 28 else { throw Error(description: "a damaged length") }
            let byte = block[position]
            position += 1
            length |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard length == expected else {
            throw Error(description: "\(length) bytes where the page header says \(expected)")
        }
        var output = [UInt8](repeating: 0, count: length)
        var written = 0
        try output.withUnsafeMutableBufferPointer { output in
            try block.withUnsafeBufferPointer { input in
                while position < input.count {
                    let tag = input[position]
                    position += 1
                    var count: Int
                    var offset = 0
                    switch tag & 3 {
                    case 0:
                        count = Int(tag >> 2)
                        if count >= 60 {
                            let bytes = count - 59
                            guard bytes <= input.count - position else { throw Error(description: "a cut literal") }
                            count = 0
                            for index in 0..<bytes { count |= Int(input[position + index]) << (8 * index) }
                            position += bytes
                        }
                        count += 1
                        guard count <= input.count - position, count <= length - written else {
                            throw Error(description: "a literal past the end")
                        }
                        for index in 0..<count { output[written + index] = input[position + index] }
                        position += count
                        written += count
                        continue
                    case 1:
                        guard position < input.count else { throw Error(description: "a cut copy") }
                        count = 4 + Int((tag >> 2) & 7)
                        offset = Int(tag >> 5) << 8 | Int(input[position])
                        position += 1
                    case 2:
                        guard 2 <= input.count - position else { throw Error(description: "a cut copy") }
                        count = 1 + Int(tag >> 2)
                        offset = Int(input[position]) | Int(input[position + 1]) << 8
                        position += 2
                    default:
                        guard 4 <= input.count - position else { throw Error(description: "a cut copy") }
                        count = 1 + Int(tag >> 2)
                        for index in 0..<4 { offset |= Int(input[position + index]) << (8 * index) }
                        position += 4
                    }
                    guard offset > 0, offset <= written, count <= length - written else {
                        throw Error(description: "a copy from outside the output")
                    }
                    // Byte by byte: a copy may overlap the bytes it writes (a run).
                    for index in 0..<count { output[written + index] = output[written - offset + index] }
                    written += count
                }
            }
        }
        guard written == length else { throw Error(description: "\(written) of \(length) bytes") }
        return output
    }
}
