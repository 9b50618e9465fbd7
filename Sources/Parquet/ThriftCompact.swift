// Thrift's compact protocol, write side only: the encoding of Parquet's page headers and file metadata. Fields are
// written in increasing id order within a struct, which is all the compact protocol's field deltas need.

/// Bytes of Thrift compact-protocol structs, written field by field.
struct ThriftCompactWriter {
    private(set) var bytes: [UInt8] = []
    /// The last field id written in each open struct, innermost last.
    private var lastField: [Int] = [0]

    enum FieldType: UInt8 {
        case i32 = 5, i64 = 6, binary = 8, list = 9, structure = 12
    }

    mutating func i32(_ id: Int, _ value: Int32) {
        header(id, .i32)
        varint(zigzag(Int64(value)))
    }

    mutating func i64(_ id: Int, _ value: Int64) {
        header(id, .i64)
        varint(zigzag(value))
    }

    mutating func string(_ id: Int, _ value: String) {
        header(id, .binary)
        binary(Array(value.utf8))
    }

    mutating func bytes(_ id: Int, _ value: [UInt8]) {
        header(id, .binary)
        binary(value)
    }

    /// A struct field whose own fields `body` writes.
    mutating func structure(_ id: Int, _ body: (inout ThriftCompactWriter) -> Void) {
        header(id, .structure)
        nested(body)
    }

    /// A list field of `count` elements of `type`, which `body` writes with the element writers below.
    mutating func list(_ id: Int, of type: FieldType, count: Int, _ body: (inout ThriftCompactWriter) -> Void) {
        header(id, .list)
        if count < 15 {
            bytes.append(UInt8(count) << 4 | type.rawValue)
        } else {
            bytes.append(0xF0 | type.rawValue)
            varint(UInt64(count))
        }
        body(&self)
    }

    /// A list element that is a struct.
    mutating func element(_ body: (inout ThriftCompactWriter) -> Void) { nested(body) }

    /// A list element that is an i32.
    mutating func element(_ value: Int32) { varint(zigzag(Int64(value))) }

    /// A list element that is a string.
    mutating func element(_ value: String) { binary(Array(value.utf8)) }

    /// Ends the outermost struct (the one `bytes` holds): its stop byte.
    mutating func end() { bytes.append(0) }

    private mutating func nested(_ body: (inout ThriftCompactWriter) -> Void) {
        lastField.append(0)
        body(&self)
        bytes.append(0)
        lastField.removeLast()
    }

    private mutating func header(_ id: Int, _ type: FieldType) {
        let delta = id - lastField[lastField.count - 1]
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            varint(zigzag(Int64(id)))
        }
        lastField[lastField.count - 1] = id
    }

    private mutating func binary(_ value: [UInt8]) {
        varint(UInt64(value.count))
        bytes += value
    }

    private func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    private mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}
