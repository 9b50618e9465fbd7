// Just enough of the protobuf wire format to read SentencePiece's ModelProto without generated code.

/// Reads fields from protobuf-encoded bytes. Unknown fields are skipped, as protobuf requires.
struct ProtobufReader {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    struct Failure: Error {
        let reason: String
    }

    private let bytes: [UInt8]
    private var position: Int
    private let end: Int

    init(_ bytes: [UInt8]) {
        self.init(bytes, range: 0..<bytes.count)
    }

    private init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        position = range.lowerBound
        end = range.upperBound
    }

    var isAtEnd: Bool { position >= end }

    /// The next field's number and wire type.
    mutating func nextField() throws -> (number: Int, wireType: WireType) {
        let key = try varint()
        guard let wireType = WireType(rawValue: UInt8(key & 7)) else {
            throw Failure(reason: "unsupported wire type \(key & 7) at byte \(position)")
        }
        let number = Int(key >> 3)
        guard number > 0 else { throw Failure(reason: "field number 0 at byte \(position)") }
        return (number, wireType)
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw Failure(reason: "truncated varint") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw Failure(reason: "varint longer than 10 bytes") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw Failure(reason: "truncated fixed32") }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[position + index]) << (8 * UInt32(index)) }
        position += 4
        return value
    }

    mutating func float() throws -> Float {
        Float(bitPattern: try fixed32())
    }

    /// A length-delimited field as a reader of its own.
    mutating func message() throws -> ProtobufReader {
        let range = try lengthDelimited()
        return ProtobufReader(bytes, range: range)
    }

    mutating func string() throws -> String {
        let range = try lengthDelimited()
        guard let text = String(validating: bytes[range], as: UTF8.self) else {
            throw Failure(reason: "a string field is not valid UTF-8")
        }
        return text
    }

    mutating func data() throws -> [UInt8] {
        Array(bytes[try lengthDelimited()])
    }

    mutating func skip(_ wireType: WireType) throws {
        switch wireType {
        case .varint: _ = try varint()
        case .fixed64:
            guard end - position >= 8 else { throw Failure(reason: "truncated fixed64") }
            position += 8
        case .fixed32: _ = try fixed32()
        case .lengthDelimited: _ = try lengthDelimited()
        }
    }

    private mutating func lengthDelimited() throws -> Range<Int> {
        let length = try varint()
        guard length <= UInt64(end - position) else {
            throw Failure(reason: "a field of \(length) bytes runs past the end at byte \(position)")
        }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }
}
