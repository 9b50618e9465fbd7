// Keeping passwords out of logs and error messages: every service URL or connection string that the binaries
// print goes through `Secrets.redacted`.

import Foundation

/// Redaction of credentials in text.
public enum Secrets {
    /// `text` with every password replaced by `***`: the password of a URL's user information
    /// (`postgresql://user:secret@host`, `amqps://u:p@h`), and the value of `password=` and `sslpassword=` in
    /// libpq `key=value` strings and URL queries (quoted values included).
    public static func redacted(_ text: String) -> String {
        redactingKeyValues(redactingURLPasswords(text))
    }

    static func redactingURLPasswords(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            result += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            // User information runs to the last @ before the end of the URL (whitespace or a quote), as long as no /
            // comes first: a password may hold ? or # unescaped, which would otherwise end the authority early.
            let urlEnd = rest.firstIndex { " \t\n\"'".contains($0) } ?? rest.endIndex
            if let at = rest[..<urlEnd].lastIndex(of: "@"), !rest[..<at].contains("/"),
                let colon = rest[..<at].firstIndex(of: ":")
            {
                result += rest[...colon] + "***"
                rest = rest[at...]
            } else {
                let authorityEnd = rest.firstIndex { "/?# \t\n\"'".contains($0) } ?? rest.endIndex
                result += rest[..<authorityEnd]
                rest = rest[authorityEnd...]
            }
        }
        return result + rest
    }

    static func redactingKeyValues(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let key = rest.range(of: "password", options: .caseInsensitive) {
            result += rest[..<key.upperBound]
            rest = rest[key.upperBound...]
            var cursor = rest.startIndex
            while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
            guard cursor < rest.endIndex, rest[cursor] == "=" else { continue }
            cursor = rest.index(after: cursor)
            while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
            result += rest[rest.startIndex..<cursor] + "***"
            if cursor < rest.endIndex, rest[cursor] == "'" {
                // A quoted libpq value: up to the closing quote, with backslash escapes.
                var end = rest.index(after: cursor)
                while end < rest.endIndex, rest[end] != "'" {
                    if rest[end] == "\\", rest.index(after: end) < rest.endIndex { end = rest.index(after: end) }
                    end = rest.index(after: end)
                }
                rest = rest[(end < rest.endIndex ? rest.index(after: end) : end)...]
            } else {
                let end = rest[cursor...].firstIndex { " \t\n&;\"".contains($0) } ?? rest.endIndex
                rest = rest[end...]
            }
        }
        return result + rest
    }
}
