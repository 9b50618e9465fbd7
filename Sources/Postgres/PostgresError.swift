// Everything that can go wrong between infmllm and PostgreSQL, with the context to act on it.

import Jobs

/// A failed PostgreSQL operation. Each case names what was attempted; `isTransient` says whether retrying can help.
public enum PostgresError: ServiceError, CustomStringConvertible, Sendable {
    /// No connection could be made to `target` (the URL with its password removed).
    case connectionFailed(target: String, message: String)
    /// The server rejected a statement. `sqlState` is the five-character SQLSTATE code when the server sent one.
    case queryFailed(sql: String, sqlState: String?, message: String)
    /// A statement succeeded but its result did not have the shape the caller needed.
    case unexpectedResult(sql: String, message: String)
    /// A migration file could not be read or applied.
    case migration(file: String, reason: String)
    /// The request does not fit what the database holds (a job of that name with other settings, or cancelled).
    case refused(reason: String)

    public var description: String {
        switch self {
        case let .connectionFailed(target, message):
            "cannot connect to PostgreSQL at \(Secrets.redacted(target)): \(Secrets.redacted(message.trimmed))"
        case let .queryFailed(sql, sqlState, message):
            "PostgreSQL rejected `\(sql.abbreviated)`\(sqlState.map { " (SQLSTATE \($0))" } ?? ""): \(message.trimmed)"
        case let .unexpectedResult(sql, message):
            "unexpected result from `\(sql.abbreviated)`: \(message)"
        case let .migration(file, reason):
            "migration \(file): \(reason)"
        case let .refused(reason):
            reason
        }
    }

    /// Whether the failure comes from the connection or the server's state rather than from the request itself,
    /// so the same request may succeed after reconnecting: connection exceptions (class 08), operator
    /// intervention such as a shutdown or a statement timeout (class 57), serialization failures and deadlocks
    /// (40001, 40P01), a lock timeout (55P03: another session holds the rows for now), and insufficient resources
    /// (class 53).
    public var isTransient: Bool {
        switch self {
        case .connectionFailed:
            return true
        case let .queryFailed(_, sqlState, _):
            guard let sqlState else { return true }  // no SQLSTATE: the connection broke mid-statement
            return sqlState.hasPrefix("08") || sqlState.hasPrefix("57") || sqlState.hasPrefix("53")
                || sqlState == "40001" || sqlState == "40P01" || sqlState == "55P03"
        case .unexpectedResult, .migration, .refused:
            return false
        }
    }
}

extension String {
    fileprivate var trimmed: String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }

    /// The statement on one line, cut to a length that fits in a log line.
    fileprivate var abbreviated: String {
        let line = split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return line.count <= 160 ? line : String(line.prefix(157)) + "..."
    }
}
