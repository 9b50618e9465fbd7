// Braces in archive patterns, as webdataset writes shard lists (`https://host/shards/{00000..00127}.tar`): numeric
// ranges, zero-padded when a bound is written with leading zeros, and alternatives (`{train,val}`), nested and
// several in one pattern, expanded left to right as a shell does. Braces of any other form stay as written.

import Foundation

enum BraceExpansion {
    /// The most names one pattern may expand to.
    static let maximumNames = 100_000

    /// `pattern` with its braces expanded, in order.
    ///
    /// - Throws: `ImageSourceError` when the pattern expands to more than `maximumNames`.
    static func expand(_ pattern: String) throws -> [String] {
        var count = 0
        var names: [String] = []
        try expand(Array(pattern), prefix: "") { name in
            count += 1
            guard count <= maximumNames else {
                throw ImageSourceError(source: pattern, reason: "the braces expand to over \(maximumNames) names")
            }
            names.append(name)
        }
        return names
    }

    private static func expand(_ text: [Character], prefix: String, _ body: (String) throws -> Void) throws {
        var index = 0
        while index < text.count {
            if text[index] == "{", let close = matching(text, from: index),
                let choices = choices(Array(text[(index + 1)..<close]))
            {
                let head = prefix + String(text[..<index])
                let tail = Array(text[(close + 1)...])
                for choice in choices {
                    // A choice may hold braces of its own; what follows the braces is expanded after each.
                    try expand(Array(choice), prefix: "") { expanded in
                        try expand(tail, prefix: head + expanded, body)
                    }
                }
                return
            }
            index += 1
        }
        try body(prefix + String(text))
    }

    /// The index of the `}` that closes the `{` at `open`.
    private static func matching(_ text: [Character], from open: Int) -> Int? {
        var depth = 0
        for index in open..<text.count {
            if text[index] == "{" { depth += 1 }
            if text[index] == "}" {
                depth -= 1
                if depth == 0 { return index }
            }
        }
        return nil
    }

    /// What a brace's contents stand for: its alternatives (split at commas outside inner braces) or the numbers
    /// of a range; nil for contents of neither form.
    private static func choices(_ contents: [Character]) -> [String]? {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in contents {
            if character == "{" { depth += 1 }
            if character == "}" { depth -= 1 }
            if character == "," && depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        if parts.count > 1 { return parts }
        return range(String(contents))
    }

    /// `A..B` for integers A and B, ascending or descending; zero-padded to the wider bound's digits when either
    /// is written with a leading zero.
    private static func range(_ text: String) -> [String]? {
        let bounds = text.components(separatedBy: "..")
        // At most 18 digits: the bounds and their difference stay far inside Int.
        guard bounds.count == 2, bounds.allSatisfy({ $0.drop { $0 == "-" }.count <= 18 }), let first = Int(bounds[0]),
            let last = Int(bounds[1]), abs(last - first) < maximumNames
        else { return nil }
        func padded(_ bound: String) -> Bool {
            let digits = bound.hasPrefix("-") ? bound.dropFirst() : Substring(bound)
            return digits.count > 1 && digits.hasPrefix("0")
        }
        let width = padded(bounds[0]) || padded(bounds[1]) ? max(bounds[0].count, bounds[1].count) : 0
        let step = first <= last ? 1 : -1
        return stride(from: first, through: last, by: step).map { number in
            let digits = String(abs(number))
            let sign = number < 0 ? "-" : ""
            return sign + String(repeating: "0", count: max(0, width - sign.count - digits.count)) + digits
        }
    }
}
