// One value of a flat Parquet column, as its logical type means it: integers (unsigned ones too), floating point and
// decimals as numbers, strings (STRING, ENUM, JSON, UUID, DATE as YYYY-MM-DD, INT96 timestamps as ISO 8601), other
// bytes as bytes.

import Foundation

public enum ParquetValue: Sendable, Equatable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
}

/// How a leaf column's physical values become `ParquetValue`s.
struct ValueMeaning {
    let physical: PhysicalType
    let typeLength: Int
    private let logical: Int?
    private let converted: Int32?
    private let scale: Int
    private let unsigned: Bool

    init(_ element: SchemaElement, physical: PhysicalType) {
        self.physical = physical
        typeLength = element.typeLength
        logical = element.logicalType
        converted = element.convertedType
        scale = element.scale
        // ConvertedType UINT_8, UINT_16, UINT_32, UINT_64.
        unsigned = element.unsigned || (11...14).contains(element.convertedType ?? -1)
    }

    private var isDecimal: Bool { logical == 5 || converted == 5 }
    private var isDate: Bool { logical == 6 || converted == 6 }
    /// STRING, ENUM or JSON (logical 1, 4, 12; converted UTF8, ENUM, JSON).
    var isText: Bool {
        if let logical { return logical == 1 || logical == 4 || logical == 12 }
        return converted == 0 || converted == 4 || converted == 19
    }

    func int32(_ raw: Int32) -> ParquetValue {
        if isDecimal { return .double(Double(raw) / pow(10, Double(scale))) }
        if isDate { return .string(Self.date(days: Int64(raw))) }
        return .int(unsigned ? Int64(UInt32(bitPattern: raw)) : Int64(raw))
    }

    func int64(_ raw: Int64) -> ParquetValue {
        if isDecimal { return .double(Double(raw) / pow(10, Double(scale))) }
        if unsigned && raw < 0 { return .double(Double(UInt64(bitPattern: raw))) }
        return .int(raw)
    }

    /// A BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY value.
    func bytes(_ raw: some Collection<UInt8>) -> ParquetValue {
        if isText { return .string(String(decoding: raw, as: UTF8.self)) }
        if isDecimal {
            // Big-endian two's complement.
            var value = 0.0
            for byte in raw { value = value * 256 + Double(byte) }
            if let first = raw.first, first & 0x80 != 0 { value -= pow(256, Double(raw.count)) }
            return .double(value / pow(10, Double(scale)))
        }
        if logical == 14 && raw.count == 16 {
            let hex = raw.map { String($0, radix: 16).leftPadded(to: 2) }
            return .string(
                [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(
                    separator: "-"))
        }
        if logical == 15 && raw.count == 2 {
            let bits = UInt16(raw[raw.startIndex]) | UInt16(raw[raw.index(after: raw.startIndex)]) << 8
            return .double(Self.half(bits))
        }
        return .bytes(Array(raw))
    }

    /// A legacy INT96 timestamp: nanoseconds of the day, then the Julian day, little-endian.
    func int96(_ raw: some Collection<UInt8>) -> ParquetValue {
        let bytes = Array(raw)
        var nanoseconds: UInt64 = 0
        for index in 0..<8 { nanoseconds |= UInt64(bytes[index]) << (8 * index) }
        var julian: UInt32 = 0
        for index in 0..<4 { julian |= UInt32(bytes[8 + index]) << (8 * index) }
        let seconds = nanoseconds / 1_000_000_000
        let fraction = nanoseconds % 1_000_000_000
        let time = String(
            format: "%02llu:%02llu:%02llu", seconds / 3600 % 24, seconds / 60 % 60, seconds % 60)
        let nanos = fraction == 0 ? "" : "." + String(fraction).leftPadded(to: 9)
        return .string(Self.date(days: Int64(julian) - 2_440_588) + "T" + time + nanos + "Z")
    }

    /// Days since 1970-01-01 as a proleptic Gregorian YYYY-MM-DD.
    static func date(days: Int64) -> String {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return String(year).leftPadded(to: 4) + "-" + String(month).leftPadded(to: 2) + "-"
            + String(day).leftPadded(to: 2)
    }

    /// An IEEE 754 half-precision value.
    static func half(_ bits: UInt16) -> Double {
        let sign = bits & 0x8000 != 0 ? -1.0 : 1.0
        let exponent = Int(bits >> 10 & 0x1F)
        let fraction = Double(bits & 0x3FF)
        switch exponent {
        case 0: return sign * fraction * pow(2, -24)
        case 31: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction / 1024) * pow(2, Double(exponent - 15))
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
