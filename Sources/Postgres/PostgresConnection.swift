// The one owner of a libpq connection (PGconn*): connects, runs statements with bound parameters, transactions.

import CLibPQ
import Jobs

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking connection to PostgreSQL.
///
/// Not thread-safe: one caller at a time, which is how libpq connections must be used. Every call blocks the
/// calling thread until the server answers, so async code runs it on a thread of its own, not the cooperative pool.
public final class PostgresConnection {
    private let handle: OpaquePointer
    /// The URL this connection was made from, with the password removed, for messages.
    public let target: String

    /// Connects to `url` (`postgresql://user:password@host:port/database`, or a libpq `key=value` string).
    ///
    /// TCP keepalive probes start after 30 s of silence and unacknowledged data fails the connection after 60 s,
    /// so a server that vanishes without closing is noticed; settings in `url` take precedence.
    ///
    /// - Parameters:
    ///   - connectTimeout: seconds before an unreachable server is reported, as libpq's `connect_timeout`.
    ///   - applicationName: what `pg_stat_activity` shows for the connection.
    ///   - statementTimeout, lockTimeout: milliseconds a statement may run, and wait for a lock, before the server
    ///     cancels it (nil: the server's defaults).
    public init(
        url: String, connectTimeout: Int = 10, applicationName: String = "infmllm", statementTimeout: Int? = nil,
        lockTimeout: Int? = nil
    ) throws {
        target = Secrets.redacted(url)
        var keys = ["keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"]
        var values = ["1", "30", "10", "3", "60000"]
        let options = [
            statementTimeout.map { "-c statement_timeout=\($0)" }, lockTimeout.map { "-c lock_timeout=\($0)" },
        ]
        .compactMap { $0 }
        if !options.isEmpty {
            keys.append("options")
            values.append(options.joined(separator: " "))
        }
        // expand_dbname=1: the dbname value is itself a URL or conninfo string; its settings replace the ones
        // before it, and the ones after it replace its own.
        keys += ["dbname", "connect_timeout", "application_name"]
        values += [url, String(connectTimeout), applicationName]
        let connection = withCStrings(keys) { keyPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keyPointers, valuePointers, 1)
            }
        }
        guard let connection else {
            throw PostgresError.connectionFailed(target: target, message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError.connectionFailed(target: target, message: message)
        }
        handle = connection
        // Notices (e.g. "relation already exists, skipping") would otherwise go to stderr.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit {
        PQfinish(handle)
    }

    /// Whether the connection is still usable as far as libpq knows.
    public var isHealthy: Bool {
        PQstatus(handle) == CONNECTION_OK
    }

    /// The server's version as an integer, such as 150018 for 15.18.
    public var serverVersion: Int {
        Int(PQserverVersion(handle))
    }

    /// Runs one statement with its bound parameters and returns its rows (empty for statements without any).
    @discardableResult
    public func execute(_ sql: SQL) throws -> PostgresRows {
        let result = withCStrings(sql.bindings) { parameters in
            PQexecParams(handle, sql.text, Int32(sql.bindings.count), nil, parameters, nil, nil, 0)
        }
        return try consume(result, sql: sql.text)
    }

    /// Runs a script of one or more statements that has no parameters, such as a migration file.
    public func executeScript(_ script: String) throws {
        _ = try consume(PQexec(handle, script), sql: script)
    }

    /// Runs `body` inside `BEGIN` ... `COMMIT`, rolling back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            // The original error matters more than a failed rollback, which a broken connection causes anyway.
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    private func consume(_ result: OpaquePointer?, sql: String) throws -> PostgresRows {
        guard let result else {
            throw PostgresError.queryFailed(sql: sql, sqlState: nil, message: String(cString: PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columns: [], values: [], affectedRowCount: Self.affectedRows(result))
        case PGRES_TUPLES_OK:
            return Self.rows(of: result)
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            throw PostgresError.queryFailed(
                sql: sql, sqlState: state, message: String(cString: PQresultErrorMessage(result)))
        }
    }

    private static func rows(of result: OpaquePointer) -> PostgresRows {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var values: [[String?]] = []
        values.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            values.append(
                (0..<columnCount).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                })
        }
        return PostgresRows(columns: columns, values: values, affectedRowCount: Int(rowCount))
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}

/// Calls `body` with C strings for `strings` (NULL for `nil`) that stay valid for the duration of the call.
private func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    return body(copies.map { $0.map { UnsafePointer($0) } } + [nil])
}
