// Thrift's compact protocol, read side: Parquet's file metadata and page headers. Every length and count is checked
// against the bytes left, and nesting is bounded, so a damaged or hostile file ends in a `ThriftCompactReader.Error`,
// never in a trap or an allocation the file's size does not justify.

/// Reads Thrift compact-protocol structs from `bytes`, field by field.
struct ThriftCompactReader {
    enum Error: Swift.Error {
        /// The bytes end inside a value: a caller reading a prefix of a stream may read more and try again.
        case truncated
        case malformed(String)
    }

    enum FieldType: UInt8 {
        case boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7, binary = 8, list = 9
        case set = 10, map = 11, structure = 12
    }

    /// The deepest nesting of structs, lists and maps read (Parquet's own metadata nests five deep).
    static let deepest = 64

    private let bytes: [UInt8]
    private(set) var position: Int
    private var depth = 0

    init(_ bytes: [UInt8], position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    /// Reads a struct: `field` is called with each field's id and type, and must read its value (with the typed
    /// readers below) or `skip` it. Boolean fields carry their value in the type: `bool(type)` reads it.
    mutating func structure(_ field: (inout ThriftCompactReader, Int, FieldType) throws -> Void) throws {
        try nest()
        defer { depth -= 1 }
        var lastField = 0
        while true {
            let header = try byte()
            if header == 0 { return }
            guard let type = FieldType(rawValue: header & 0x0F) else {
                throw Error.malformed("field type \(header & 0x0F)")
            }
            let delta = Int(header >> 4)
            let id = delta != 0 ? lastField + delta : Int(try zigzag32())
            lastField = id
            try field(&self, id, type)
        }
    }

    /// A list's elements: `element` is called once for each, with the elements' type, and must read it.
    mutating func list(_ element: (inout ThriftCompactReader, FieldType) throws -> Void) throws {
        try nest()
        defer { depth -= 1 }
        let header = try byte()
        var count = Int(header >> 4)
        if count == 15 { count = try length() }
        guard let type = FieldType(rawValue: header & 0x0F) else {
            throw Error.malformed("list element type \(header & 0x0F)")
        }
        // Every element takes at least a byte, so a count beyond the bytes left is damage, not a big list.
        guard count <= bytes.count - position else { throw Error.truncated }
        for _ in 0..<count { try element(&self, type) }
    }

    mutating func i32() throws -> Int32 { try zigzag32() }

    mutating func i64() throws -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A 32-bit integer field that must not be negative, as an `Int`.
    mutating func count() throws -> Int {
        let value = try i32()
        guard value >= 0 else { throw Error.malformed("a negative size \(value)") }
        return Int(value)
    }

    mutating func binary() throws -> ArraySlice<UInt8> {
        let count = try length()
        guard count <= bytes.count - position else { throw Error.truncated }
        defer { position += count }
        return bytes[position..<position + count]
    }

    mutating func string() throws -> String { String(decoding: try binary(), as: UTF8.self) }

    /// A boolean: in a struct field its type holds it; as a list element, a byte.
    mutating func bool(_ type: FieldType) throws -> Bool {
        switch type {
        case .boolTrue: return true
        case .boolFalse: return false
        default: return try byte() == 1
        }
    }

    /// Passes over a value of `type`, nested values included.
    mutating func skip(_ type: FieldType) throws {
        switch type {
        case .boolTrue, .boolFalse: return
        case .byte: _ = try byte()
        case .i16, .i32, .i64: _ = try varint()
        case .double: try advance(8)
        case .binary: _ = try binary()
        case .list, .set: try list { reader, element in try reader.skip(element) }
        case .map:
            try nest()
            defer { depth -= 1 }
            let count = try length()
            guard count > 0 else { return }
            let types = try byte()
            guard let key = FieldType(rawValue: types >> 4), let value = FieldType(rawValue: types & 0x0F) else {
                throw Error.malformed("map types \(types)")
            }
            guard count <= bytes.count - position else { throw Error.truncated }
            for _ in 0..<count {
                try skip(key == .boolTrue || key == .boolFalse ? .byte : key)
                try skip(value == .boolTrue || value == .boolFalse ? .byte : value)
            }
        case .structure: try structure { reader, _, type in try reader.skip(type) }
        }
    }

    private mutating func nest() throws {
        guard depth < Self.deepest else { throw Error.malformed("nested over \(Self.deepest) deep") }
        depth += 1
    }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw Error.truncated }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func advance(_ count: Int) throws {
        guard count <= bytes.count - position else { throw Error.truncated }
        position += count
    }

    private mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw Error.malformed("a varint over 64 bits") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    private mutating func zigzag32() throws -> Int32 {
        let raw = try varint()
        guard raw <= UInt64(UInt32.max) else { throw Error.malformed("a 32-bit integer of \(raw)") }
        let value = UInt32(raw)
        return Int32(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    /// An unsigned varint length or count, as an `Int`.
    private mutating func length() throws -> Int {
        let raw = try varint()
        guard raw <= UInt64(Int32.max) else { throw Error.malformed("a length of \(raw)") }
        return Int(raw)
    }
}
