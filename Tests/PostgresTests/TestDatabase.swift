// A fresh, migrated database per test against the real PostgreSQL that ops/services.sh starts.

import Foundation
import Postgres
import TestSupport

enum TestDatabase {
    /// The server to test against; its role must be allowed to create databases (ops/services.sh grants that).
    static let serverURL =
        ProcessInfo.processInfo.environment["INFMLLM_DATABASE_URL"]
        ?? "postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm"

    /// The repository's migrations directory.
    static let migrationsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("migrations").path

    /// Creates an empty database, runs `body` with its URL, and drops it afterwards.
    static func withEmpty<T>(_ body: (String) throws -> T) throws -> T {
        let admin = try PostgresConnection(url: serverURL)
        let name = "infmllm_test_\(UInt64.random(in: 0...UInt64.max).hex)"
        try admin.execute("CREATE DATABASE \(identifier: name)")
        defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(identifier: name) WITH (FORCE)") }
        return try body(url(forDatabase: name))
    }

    /// Creates a database with every migration applied and runs `body` with a connection to it.
    static func withMigrated<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            try Migrator(connection: connection).migrate(Migration.load(directory: migrationsDirectory))
            return try body(connection)
        }
    }

    /// `serverURL` with its database name replaced by `name`.
    static func url(forDatabase name: String) -> String {
        guard let slash = serverURL.range(of: "/", options: .backwards), serverURL[..<slash.lowerBound].contains("@")
        else { return serverURL + "/" + name }
        let query = serverURL[slash.upperBound...].firstIndex(of: "?").map { String(serverURL[$0...]) } ?? ""
        return String(serverURL[..<slash.upperBound]) + name + query
    }
}
