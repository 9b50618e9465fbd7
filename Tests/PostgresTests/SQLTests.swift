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
}
