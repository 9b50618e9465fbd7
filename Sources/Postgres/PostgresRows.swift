// The rows a statement returned, in PostgreSQL's text format, with typed accessors.

/// The result of one statement.
public struct PostgresRows: Sendable, Sequence {
    /// Column names in result order.
    public let columns: [String]
    /// Cell values in text format; `nil` is SQL NULL.
    public let values: [[String?]]
    /// Rows returned, or rows changed by an INSERT, UPDATE or DELETE.
    public let affectedRowCount: Int

    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }

    public func makeIterator() -> some IteratorProtocol<PostgresRow> {
        values.lazy.map { PostgresRow(columns: columns, cells: $0) }.makeIterator()
    }

    /// The first row, or nil when there is none.
    public var first: PostgresRow? {
        values.first.map { PostgresRow(columns: columns, cells: $0) }
    }
}

/// One row of a result, read by column name.
public struct PostgresRow: Sendable {
    let columns: [String]
    let cells: [String?]

    /// The raw text of `column`, or nil for SQL NULL.
    public func text(_ column: String) throws -> String? {
        guard let index = columns.firstIndex(of: column) else {
            throw PostgresError.unexpectedResult(
                sql: columns.joined(separator: ", "), message: "no column \"\(column)\"")
        }
        return cells[index]
    }

    public func string(_ column: String) throws -> String {
        try required(column, as: "text") { $0 }
    }

    public func int(_ column: String) throws -> Int {
        try required(column, as: "integer") { Int($0) }
    }

    public func double(_ column: String) throws -> Double {
        try required(column, as: "double precision") { Double($0) }
    }

    public func bool(_ column: String) throws -> Bool {
        try required(column, as: "boolean") { $0 == "t" ? true : $0 == "f" ? false : nil }
    }

    private func required<T>(_ column: String, as type: String, _ parse: (String) -> T?) throws -> T {
        guard let text = try text(column) else {
            throw PostgresError.unexpectedResult(sql: columns.joined(separator: ", "), message: "\(column) is NULL")
        }
        guard let value = parse(text) else {
            throw PostgresError.unexpectedResult(
                sql: columns.joined(separator: ", "), message: "\(column) = \"\(text)\" is not \(type)")
        }
        return value
    }
}
