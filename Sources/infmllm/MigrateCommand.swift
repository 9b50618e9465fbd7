// `infmllm migrate`: applies pending schema migrations, or lists their state.

import ArgumentParser
import Foundation
import Postgres

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the pending database migrations, each in its own transaction.",
        discussion: """
            Running it again changes nothing. Concurrent runs wait for each other. A migration file that changed \
            after it was applied is reported and nothing is applied.
            """
    )

    @OptionGroup var services: ServiceOptions

    @OptionGroup var migrations: MigrationOptions

    @Flag(help: "List applied and pending migrations without applying any.")
    var status = false

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let directory = migrations.resolvedDirectory(environment)
        let migrations = try Migration.load(directory: directory)
        let connection = try PostgresConnection(url: services.resolvedDatabaseURL(environment))
        let migrator = Migrator(connection: connection)
        let applied: [String]
        let pending: [String]
        if status {
            applied = try migrator.applied().map(\.fileName)
            pending = try migrator.pending(migrations).map(\.fileName)
        } else {
            let before = try migrator.applied().map(\.fileName)
            let done = try migrator.migrate(migrations).map(\.fileName)
            applied = before + done
            pending = []
            if !json {
                print(done.isEmpty ? "schema is current" : done.map { "applied \($0)" }.joined(separator: "\n"))
            }
        }
        if json {
            print(try JSONOutput.encode(Report(database: connection.target, applied: applied, pending: pending)))
        } else if status {
            applied.forEach { print("applied  \($0)") }
            pending.forEach { print("pending  \($0)") }
        }
    }
}

extension MigrateCommand {
    struct Report: Encodable {
        let database: String
        let applied: [String]
        let pending: [String]
    }
}
