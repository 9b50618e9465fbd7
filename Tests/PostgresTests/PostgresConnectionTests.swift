// The libpq owner against the real server: parameters, results, errors with context.

import Postgres
import Testing

@Suite struct PostgresConnectionTests {
    @Test func connectsToPostgres15OrLater() throws {
        let connection = try PostgresConnection(url: TestDatabase.serverURL)
        #expect(connection.isHealthy)
        #expect(connection.serverVersion >= 150_000)
    }

    @Test(arguments: ["'; DROP TABLE jobs; --", "", "naïve café 猫 🐈", "line\nbreak\ttab", "$1 \\ \"quoted\""])
    func boundTextComesBackUnchanged(_ value: String) throws {
        let connection = try PostgresConnection(url: TestDatabase.serverURL)
        let row = try #require(try connection.execute("SELECT \(value)::text AS echoed").first)
        #expect(try row.string("echoed") == value)
    }

    /// The worker's sessions carry their name and time limits; the URL's own settings still win.
    @Test func sessionsCarryTheirNameAndStatementLimits() throws {
        let connection = try PostgresConnection(
            url: TestDatabase.serverURL, applicationName: "infmllm test-role", statementTimeout: 300, lockTimeout: 200)
        #expect(try connection.execute("SHOW statement_timeout").first?.string("statement_timeout") == "300ms")
        #expect(try connection.execute("SHOW lock_timeout").first?.string("lock_timeout") == "200ms")
        #expect(
            try connection.execute("SHOW application_name").first?.string("application_name") == "infmllm test-role")
        #expect {
            try connection.execute("SELECT pg_sleep(5)")
        } throws: { "\($0)".contains("statement timeout") }
        let separator = TestDatabase.serverURL.contains("?") ? "&" : "?"
        let overridden = try PostgresConnection(
            url: TestDatabase.serverURL + separator + "options=-c%20statement_timeout%3D900", statementTimeout: 300)
        #expect(try overridden.execute("SHOW statement_timeout").first?.string("statement_timeout") == "900ms")
    }

    @Test func textArraysRoundTripThroughUnnest() throws {
        let connection = try PostgresConnection(url: TestDatabase.serverURL)
        let values = ["plain", "", "NULL", "a,b", "{braces}", "say \"hi\"", "back\\slash", "猫 🐈", " spaced "]
        let rows = try connection.execute("SELECT unnest(\(PostgresArray(values))::text[]) AS v")
        #expect(try rows.map { try $0.string("v") } == values)
    }

    @Test func nullsAndTypedColumnsAreRead() throws {
        let connection = try PostgresConnection(url: TestDatabase.serverURL)
        let row = try #require(
            try connection.execute(
                "SELECT \(nil as String?)::text AS missing, \(42)::int AS n, \(2.5)::float8 AS x, \(true)::bool AS b"
            ).first)
        #expect(try row.text("missing") == nil)
        #expect(try row.int("n") == 42)
        #expect(try row.double("x") == 2.5)
        #expect(try row.bool("b"))
        #expect(throws: PostgresError.self) { try row.int("missing") }
        #expect(throws: PostgresError.self) { try row.int("no_such_column") }
    }

    @Test func rejectedStatementCarriesSQLStateAndIsPermanent() throws {
        let connection = try PostgresConnection(url: TestDatabase.serverURL)
        do {
            try connection.execute("SELECT * FROM no_such_table_here")
            Issue.record("expected an error")
        } catch let error as PostgresError {
            guard case let .queryFailed(_, sqlState, message) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(sqlState == "42P01")
            #expect(message.contains("no_such_table_here"))
            #expect(!error.isTransient)
        }
        #expect(connection.isHealthy, "a failed statement leaves the connection usable")
    }

    @Test func unreachableServerIsATransientErrorWithoutThePassword() throws {
        do {
            _ = try PostgresConnection(url: "postgresql://infmllm:s3cret@127.0.0.1:1/infmllm", connectTimeout: 2)
            Issue.record("expected a connection failure")
        } catch let error as PostgresError {
            #expect(error.isTransient)
            #expect(!error.description.contains("s3cret"))
            #expect(error.description.contains("127.0.0.1:1"))
        }
    }

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        try TestDatabase.withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            try connection.execute("CREATE TABLE items (name text)")
            struct Abort: Error {}
            #expect(throws: Abort.self) {
                try connection.transaction {
                    try connection.execute("INSERT INTO items VALUES (\("kept?"))")
                    throw Abort()
                }
            }
            #expect(try connection.execute("SELECT name FROM items").isEmpty)
        }
    }
}
