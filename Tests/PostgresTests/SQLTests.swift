// Interpolated values become bound parameters; only identifiers are written into the text, quoted.

import Postgres
import Testing

@Suite struct SQLTests {
    @Test func interpolatedValuesBecomeNumberedParameters() {
        let uri = "a.jpg'; DROP TABLE tasks; --"
        let sql: SQL =
            "SELECT id FROM tasks WHERE image_uri = \(uri) AND attempts < \(3) AND worker = \(nil as String?)"
        #expect(sql.text == "SELECT id FROM tasks WHERE image_uri = $1 AND attempts < $2 AND worker = $3")
        #expect(sql.bindings == [uri, "3", nil])
    }

    @Test func identifiersAreQuotedWithQuotesDoubled() {
        let sql: SQL = "CREATE DATABASE \(identifier: "odd\"name")"
        #expect(sql.text == "CREATE DATABASE \"odd\"\"name\"")
        #expect(sql.bindings.isEmpty)
    }

    @Test func valuesUsePostgresTextForms() {
        #expect(true.sqlText == "true")
        #expect([1, 2, 3].sqlText == "{1,2,3}")
        #expect(Double.infinity.sqlText == "Infinity")
        #expect(Double.nan.sqlText == "NaN")
        #expect(0.25.sqlText == "0.25")
    }

    @Test func appendedStatementsAreRenumbered() {
        var sql: SQL = "SELECT \(1) AS a WHERE x = \(2)"
        sql.append(" AND y = \("three") AND z = \(4)")
        #expect(sql.text == "SELECT $1 AS a WHERE x = $2 AND y = $3 AND z = $4")
        #expect(sql.bindings == ["1", "2", "three", "4"])
    }

    @Test func arraysQuoteTheirElements() {
        #expect(
            PostgresArray(["a", "b,c", "say \"hi\"", "back\\slash"]).sqlText
                == #"{"a","b,c","say \"hi\"","back\\slash"}"#)
        #expect(PostgresArray([Int64(1), 2]).sqlText == "{1,2}")
    }

    /// A quote or backslash followed by a combining mark is one Character in Swift; it is still escaped, and the
    /// text comes back from the database as it went in.
    @Test func quotesAndBackslashesBeforeCombiningMarksAreEscaped() throws {
        let values = ["say \"\u{301}hi\"", "back\\\u{FE0F}slash", "\"\u{200D}"]
        #expect(
            PostgresArray(values).sqlText == "{\"say \\\"\u{301}hi\\\"\",\"back\\\\\u{FE0F}slash\",\"\\\"\u{200D}\"}")
        let sql: SQL = "CREATE DATABASE \(identifier: "odd\"\u{301}name")"
        #expect(sql.text == "CREATE DATABASE \"odd\"\"\u{301}name\"")
        try TestDatabase.withMigrated { connection in
            let rows = try connection.execute("SELECT unnest(\(PostgresArray(values))::text[]) AS t")
            let back = try rows.map { try $0.string("t") }
            #expect(back.map { Array($0.unicodeScalars) } == values.map { Array($0.unicodeScalars) })
        }
    }

    @Test func textLosesOnlyTheNULPostgreSQLCannotStore() throws {
        #expect("a\u{0}b\u{0}".storable == "ab")
        #expect("naïve 🙂".storable == "naïve 🙂")
        #expect(PostgresArray(["x\u{0}y"]).sqlText == #"{"xy"}"#)
        try TestDatabase.withMigrated { connection in
            let text = try connection.execute("SELECT \("cap\u{0}tion")::text AS t").first!.string("t")
            #expect(text == "caption")
        }
    }
}
