// Field-table values (queue arguments, message headers) and their conversion to and from librabbitmq tables.

import CRabbitMQ

/// A value in an AMQP field table, as queue arguments and message headers carry them.
public enum AMQPValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)

    /// The value as an integer when it is one.
    public var intValue: Int64? {
        if case let .int(value) = self { return value }
        return nil
    }
}

/// Calls `body` with a librabbitmq table holding `entries`; the table's memory lives only for the call.
func withAMQPTable<R>(_ entries: [(String, AMQPValue)], _ body: (amqp_table_t) throws -> R) rethrows -> R {
    var allocations: [amqp_bytes_t] = []
    let buffer = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: max(entries.count, 1))
    defer {
        buffer.deallocate()
        allocations.forEach { amqp_bytes_free($0) }
    }
    for (index, (key, value)) in entries.enumerated() {
        let keyBytes = amqpBytesCopy(key)
        allocations.append(keyBytes)
        var field = amqp_field_value_t()
        switch value {
        case let .string(text):
            let bytes = amqpBytesCopy(text)
            allocations.append(bytes)
            field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            field.value.bytes = bytes
        case let .int(number):
            field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            field.value.i64 = number
        case let .bool(flag):
            field.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            field.value.boolean = flag ? 1 : 0
        }
        buffer[index] = amqp_table_entry_t(key: keyBytes, value: field)
    }
    return try body(amqp_table_t(num_entries: Int32(entries.count), entries: buffer))
}

/// The entries of a table received from the broker. Kinds other than text, integers and booleans are skipped.
func decodeAMQPTable(_ table: amqp_table_t) -> [String: AMQPValue] {
    var result: [String: AMQPValue] = [:]
    guard let entries = table.entries else { return result }
    for index in 0..<Int(table.num_entries) {
        let entry = entries[index]
        let key = string(from: entry.key)
        let value = entry.value
        switch UInt32(value.kind) {
        case AMQP_FIELD_KIND_UTF8.rawValue, AMQP_FIELD_KIND_BYTES.rawValue:
            result[key] = .string(string(from: value.value.bytes))
        case AMQP_FIELD_KIND_I8.rawValue: result[key] = .int(Int64(value.value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: result[key] = .int(Int64(value.value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: result[key] = .int(Int64(value.value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: result[key] = .int(Int64(value.value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: result[key] = .int(Int64(value.value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: result[key] = .int(Int64(value.value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: result[key] = .int(value.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: result[key] = .int(Int64(truncatingIfNeeded: value.value.u64))
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: result[key] = .bool(value.value.boolean != 0)
        default: continue
        }
    }
    return result
}

/// A malloc'ed copy of `text` as AMQP bytes; release it with `amqp_bytes_free`.
func amqpBytesCopy(_ text: String) -> amqp_bytes_t {
    text.withCString { amqp_bytes_malloc_dup(amqp_cstring_bytes($0)) }
}

/// Calls `body` with AMQP bytes that view `text` for the duration of the call, without copying.
func withAMQPBytes<R>(_ text: String, _ body: (amqp_bytes_t) throws -> R) rethrows -> R {
    var text = text
    return try text.withUTF8 { buffer in
        try body(amqp_bytes_t(len: buffer.count, bytes: UnsafeMutableRawPointer(mutating: buffer.baseAddress)))
    }
}

func string(from bytes: amqp_bytes_t) -> String {
    guard let base = bytes.bytes, bytes.len > 0 else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: base, count: bytes.len), as: UTF8.self)
}
