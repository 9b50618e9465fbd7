// The output of the LZ77 block formats Parquet pages come in (Snappy, LZ4): literals copied from the block and
// back-references to what is already written, each checked to fit, into exactly the size the page header gives.

struct BlockOutput {
    struct Error: Swift.Error, CustomStringConvertible {
        let description: String
    }

    private(set) var bytes: [UInt8]
    private(set) var written = 0

    init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    /// Bytes of output still to write.
    var room: Int { bytes.count - written }

    /// Appends `count` bytes of `block` from `start`.
    mutating func literal(_ block: [UInt8], from start: Int, count: Int) throws {
        guard count >= 0, count <= block.count - start, count <= room else {
            throw Error(description: "a literal past the end")
        }
        for index in 0..<count { bytes[written + index] = block[start + index] }
        written += count
    }

    /// Appends `count` bytes copied from `offset` bytes back, byte by byte: a copy may overlap the bytes it writes
    /// (a run).
    mutating func copy(offset: Int, count: Int) throws {
        guard offset > 0, offset <= written, count <= room else {
            throw Error(description: "a copy from outside the output")
        }
        for index in 0..<count { bytes[written + index] = bytes[written - offset + index] }
        written += count
    }

    /// The output, once every byte of it is written.
    func finished() throws -> [UInt8] {
        guard room == 0 else { throw Error(description: "\(written) of \(bytes.count) bytes") }
        return bytes
    }
}
