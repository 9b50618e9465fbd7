// SQL text whose interpolated values become bound parameters ($1, $2, ...), never spliced into the text.

/// A statement and its bound parameters.
///
/// Interpolated values are sent separately from the text through `PQexecParams`, so no value can change the
/// statement: `"SELECT * FROM tasks WHERE image_uri = \(uri)"` becomes `... WHERE image_uri = $1`.
/// Identifiers that cannot be parameters (a database name) go through `\(identifier: name)`, which quotes them.
public struct SQL: ExpressibleByStringInterpolation, Sendable, CustomStringConvertible {
    /// The statement text with `$n` placeholders.
    public private(set) var text: String
    /// The parameters in placeholder order, in PostgreSQL's text format; `nil` is SQL NULL.
    public private(set) var bindings: [String?]

    public init(stringLiteral value: String) {
        text = value
        bindings = []
    }

    public init(stringInterpolation: StringInterpolation) {
        text = stringInterpolation.text
        bindings = stringInterpolation.bindings
    }

    public var description: String { text }

    /// Appends `other`, renumbering its placeholders after this statement's own.
    public mutating func append(_ other: SQL) {
        var renumbered = ""
        var index = other.text.startIndex
        while index < other.text.endIndex {
            let character = other.text[index]
            if character == "$",
                let digitsEnd = other.text[other.text.index(after: index)...].firstIndex(where: { !$0.isNumber })
                    ?? Optional(other.text.endIndex), digitsEnd > other.text.index(after: index),
                let number = Int(other.text[other.text.index(after: index)..<digitsEnd])
            {
                renumbered += "$\(number + bindings.count)"
                index = digitsEnd
            } else {
                renumbered.append(character)
                index = other.text.index(after: index)
            }
        }
        text += renumbered
        bindings += other.bindings
    }

    /// Builds the text and bindings of an interpolated statement.
    public struct StringInterpolation: StringInterpolationProtocol {
        var text = ""
        var bindings: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + 3 * interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            text += literal
        }

        /// Binds `value` as the next parameter.
        public mutating func appendInterpolation(_ value: some SQLBindable) {
            bindings.append(value.sqlText)
            text += "$\(bindings.count)"
        }

        /// Binds `value`, or SQL NULL when it is `nil`, as the next parameter.
        public mutating func appendInterpolation(_ value: (some SQLBindable)?) {
            bindings.append(value?.sqlText)
            text += "$\(bindings.count)"
        }

        /// Inserts `name` as a double-quoted identifier, for the places where PostgreSQL takes no parameter.
        public mutating func appendInterpolation(identifier name: String) {
            text += "\"" + name.replacingAll("\"", with: "\"\"") + "\""
        }
    }
}

/// A Swift value that can be sent as a PostgreSQL parameter in text format.
public protocol SQLBindable: Sendable {
    /// The value as PostgreSQL parses it from text.
    var sqlText: String { get }
}

extension String: SQLBindable {
    /// The text without U+0000, which PostgreSQL cannot store (see `storable`).
    public var sqlText: String { storable }
}

extension Substring: SQLBindable {
    public var sqlText: String { String(self).storable }
}

extension Int: SQLBindable {
    public var sqlText: String { String(self) }
}

extension Int32: SQLBindable {
    public var sqlText: String { String(self) }
}

extension Int64: SQLBindable {
    public var sqlText: String { String(self) }
}

extension Double: SQLBindable {
    // Swift's shortest round-trip form; PostgreSQL reads `inf`/`nan` only in its own spelling.
    public var sqlText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return String(self)
    }
}

extension Bool: SQLBindable {
    public var sqlText: String { self ? "true" : "false" }
}

extension Array: SQLBindable where Element == Int {
    /// A PostgreSQL array literal such as `{1,2,3}`, for `int[]` and `bigint[]` columns.
    public var sqlText: String { "{" + map(String.init).joined(separator: ",") + "}" }
}

extension String {
    /// Every `target` replaced, scalar by scalar: a quote followed by a combining mark is one Character in Swift,
    /// and would not compare equal to the quote.
    fileprivate func replacingAll(_ target: Unicode.Scalar, with replacement: String) -> String {
        var result = ""
        result.reserveCapacity(utf8.count)
        for scalar in unicodeScalars {
            if scalar == target { result += replacement } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }
}

/// A PostgreSQL array literal of text or integers, for bulk statements (`unnest(\(array)::text[])`).
public struct PostgresArray: SQLBindable {
    public let sqlText: String

    public init(_ values: [String]) {
        sqlText =
            "{"
            + values.map { value in
                // Scalar by scalar: a quote or backslash followed by a combining mark is one Character.
                var quoted = "\""
                for scalar in value.storable.unicodeScalars {
                    if scalar == "\"" || scalar == "\\" { quoted.unicodeScalars.append("\\") }
                    quoted.unicodeScalars.append(scalar)
                }
                return quoted + "\""
            }.joined(separator: ",") + "}"
    }

    public init(_ values: [Int64]) {
        sqlText = "{" + values.map(String.init).joined(separator: ",") + "}"
    }
}
