// Reading CSV manifests.

/// RFC 4180 CSV: comma-separated, double-quoted fields with "" for a quote, CRLF or LF line ends (a CR outside quotes
/// is dropped). Parsed by bytes: quotes, commas and line ends are ASCII, never part of a longer UTF-8 sequence.
enum CSV {
    /// A record over `maximumBytes` comes back with no fields (`oversized`), its bytes skipped.
    static let maximumBytes = 1 << 20

    struct Record: Equatable {
        var fields: [String]
        var oversized: Bool
    }

    /// Every record of `text`.
    static func rows(_ text: String) -> [[String]] {
        var iterator = text.utf8.makeIterator()
        var rows: [[String]] = []
        while let record = nextRecord({ iterator.next() }) { rows.append(record.fields) }
        return rows
    }

    /// The next record of the bytes `next` gives, or nil at their end.
    static func nextRecord(_ next: () throws -> UInt8?) rethrows -> Record? {
        var fields: [String] = [], field: [UInt8] = []
        var quoted = false, afterQuote = false, size = 0, oversized = false
        func append(_ byte: UInt8) {
            size += 1
            if size > maximumBytes { oversized = true } else { field.append(byte) }
        }
        func endField() {
            if !oversized { fields.append(String(decoding: field, as: UTF8.self)) }
            field = []
        }
        while let byte = try next() {
            if quoted {
                if byte == UInt8(ascii: "\"") { quoted = false; afterQuote = true } else { append(byte) }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                if afterQuote { append(byte) }
                quoted = true
                afterQuote = false
            case UInt8(ascii: ","):
                endField()
                afterQuote = false
            case UInt8(ascii: "\n"):
                endField()
                return Record(fields: oversized ? [] : fields, oversized: oversized)
            case UInt8(ascii: "\r"):
                continue
            default:
                append(byte)
                afterQuote = false
            }
        }
        // The end of the bytes ends a last record without a line end, when it holds anything.
        guard !field.isEmpty || !fields.isEmpty || oversized else { return nil }
        endField()
        return Record(fields: oversized ? [] : fields, oversized: oversized)
    }
}
