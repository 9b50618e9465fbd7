// `migrate` on fresh databases: applies every file once, is a no-op the second time, refuses edited history.

import Dispatch
import Foundation
import Postgres
import TestSupport
import Testing

@Suite struct MigratorTests {
    let migrations: [Migration]

    init() throws {
        migrations = try Migration.load(directory: TestDatabase.migrationsDirectory)
    }

    @Test func appliesEveryMigrationOnceAndThenNothing() throws {
        try TestDatabase.withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            let migrator = Migrator(connection: connection)
            #expect(try migrator.applied().isEmpty)
            let first = try migrator.migrate(migrations)
            #expect(first == migrations)
            #expect(try migrator.migrate(migrations).isEmpty)
            #expect(try migrator.applied().map(\.version) == migrations.map(\.version))
            #expect(try migrator.pending(migrations).isEmpty)
        }
    }

    /// Migration 0009: beam-search jobs and results stored before `beam_rules` existed were decoded with 5.x's
    /// rules, and say so afterwards; greedy ones, and ones that name their rules, are left as they are.
    @Test func beamSettingsStoredBeforeTheRulesKeyNameTransformers5() throws {
        try TestDatabase.withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            try Migrator(connection: connection).migrate(migrations.filter { $0.version < 9 })
            try connection.executeScript(
                """
                INSERT INTO jobs (name, task_kind, model, generation) VALUES
                    ('beams', 'caption', 'm', '{"num_beams": 5, "max_new_tokens": 29}'),
                    ('greedy', 'caption', 'm', '{"num_beams": 1}'),
                    ('named', 'caption', 'm', '{"num_beams": 3, "beam_rules": "transformers-4.31"}'),
                    ('odd', 'caption', 'm', '{"num_beams": "five"}');
                INSERT INTO tasks (job_id, image_uri) VALUES (1, '/a.jpg'), (2, '/a.jpg');
                INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count,
                                     model_name, prompt, decoding, device, worker)
                VALUES (1, 1, 'a', 1, 1, 'm', 'p', '{"num_beams": 5}', 'cpu', 'w'),
                       (2, 2, 'b', 1, 1, 'm', 'p', '{"num_beams": 1}', 'cpu', 'w');
                """)
            try Migrator(connection: connection).migrate(migrations)
            let jobs = try connection.execute("SELECT name, generation ->> 'beam_rules' AS rules FROM jobs ORDER BY id")
            #expect(
                try jobs.map { "\(try $0.string("name")) \(try $0.text("rules") ?? "-")" }
                    == ["beams transformers-5", "greedy -", "named transformers-4.31", "odd -"])
            let results = try connection.execute(
                "SELECT decoding ->> 'beam_rules' AS rules FROM results ORDER BY task_id")
            #expect(try results.map { try $0.text("rules") ?? "-" } == ["transformers-5", "-"])
        }
    }

    @Test func createsTheCoreTablesAndViews() throws {
        try TestDatabase.withMigrated { connection throws in
            let relations = try connection.execute(
                """
                SELECT table_name FROM information_schema.tables
                WHERE table_schema = 'public' ORDER BY table_name
                """
            ).map { try $0.string("table_name") }
            for name in [
                "jobs", "tasks", "results", "result_boxes", "captions", "answers", "boxes", "schema_migrations",
            ] {
                #expect(relations.contains(name), "missing \(name)")
            }
        }
    }

    @Test func concurrentRunsApplyEachMigrationOnce() throws {
        try TestDatabase.withEmpty { url throws in
            let outcomes = Outcomes()
            DispatchQueue.concurrentPerform(iterations: 3) { _ in
                do {
                    let connection = try PostgresConnection(url: url)
                    outcomes.add(try Migrator(connection: connection).migrate(migrations).count)
                } catch {
                    outcomes.add(error: error)
                }
            }
            #expect(outcomes.errors.isEmpty, "\(outcomes.errors)")
            #expect(outcomes.counts.sorted() == [0, 0, migrations.count])
        }
    }

    @Test func refusesAMigrationEditedAfterItWasApplied() throws {
        try TestDatabase.withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            let migrator = Migrator(connection: connection)
            try migrator.migrate(migrations)
            var edited = migrations
            edited[0] = Migration(
                version: edited[0].version, fileName: edited[0].fileName, sql: edited[0].sql + "\n-- edit")
            #expect {
                try migrator.migrate(edited)
            } throws: { error in
                "\(error)".contains("changed after it was applied") && "\(error)".contains(edited[0].fileName)
            }
        }
    }

    @Test func refusesADatabaseNewerThanTheBuild() throws {
        try TestDatabase.withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            let migrator = Migrator(connection: connection)
            let future = Migration(
                version: 9999, fileName: "9999_future_change.sql", sql: "CREATE TABLE future (x int)")
            try migrator.migrate(migrations + [future])
            #expect {
                try migrator.migrate(migrations)
            } throws: { error in
                "\(error)".contains("9999_future_change.sql")
            }
        }
    }

    /// The store's schema check (a worker's, on each connection) refuses a database short of the build's newest
    /// migration, and an empty one, naming the fix; `schemaVersion` is the newest migration file.
    @Test func theStoreRefusesASchemaOlderThanTheBuild() throws {
        #expect(PostgresJobStore.schemaVersion == migrations.map(\.version).max())
        try TestDatabase.withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            let store = PostgresJobStore(connection: connection)
            #expect {
                try store.checkSchema()
            } throws: { "\($0)".contains("schema is at migration 0") && "\($0)".contains("infmllm migrate") }
            try Migrator(connection: connection).migrate(
                migrations.filter { $0.version < PostgresJobStore.schemaVersion })
            #expect {
                try store.checkSchema()
            } throws: { "\($0)".contains("at migration \(PostgresJobStore.schemaVersion - 1)") }
            try Migrator(connection: connection).migrate(migrations)
            try store.checkSchema()
        }
    }

    @Test func failedMigrationLeavesNoTraceAndNamesTheFile() throws {
        try TestDatabase.withEmpty { url throws in
            let connection = try PostgresConnection(url: url)
            let migrator = Migrator(connection: connection)
            let broken = Migration(
                version: 9000, fileName: "9000_broken_change.sql",
                sql: "CREATE TABLE half_done (x int);\nSELECT no_such_function();")
            #expect {
                try migrator.migrate(migrations + [broken])
            } throws: { error in
                "\(error)".contains("9000_broken_change.sql") && "\(error)".contains("no_such_function")
            }
            #expect(try migrator.applied().map(\.version) == migrations.map(\.version))
            let leftover = try connection.execute("SELECT to_regclass('half_done') IS NULL AS gone").first
            #expect(try leftover?.bool("gone") == true)
        }
    }
}

@Suite struct MigrationFileTests {
    @Test func loadsNumberedFilesInOrderAndIgnoresOthers() throws {
        let directory = try temporaryDirectory(files: [
            "0002_add_b.sql": "SELECT 2;", "0001_add_a.sql": "SELECT 1;", "README.md": "notes",
        ])
        let migrations = try Migration.load(directory: directory)
        #expect(migrations.map(\.fileName) == ["0001_add_a.sql", "0002_add_b.sql"])
        #expect(migrations.map(\.version) == [1, 2])
    }

    @Test(arguments: ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0001_.sql", "abcd_name.sql"])
    func rejectsBadlyNamedSQLFiles(_ name: String) throws {
        let directory = try temporaryDirectory(files: [name: "SELECT 1;"])
        #expect { try Migration.load(directory: directory) } throws: { "\($0)".contains(name) }
    }

    @Test func rejectsTwoFilesWithOneVersion() throws {
        let directory = try temporaryDirectory(files: ["0001_add_a.sql": "", "0001_add_b.sql": ""])
        #expect { try Migration.load(directory: directory) } throws: { "\($0)".contains("also used by") }
    }

    @Test func aDirectoryWithoutMigrationsIsRefused() throws {
        let directory = try temporaryDirectory(files: ["README.md": "notes"])
        #expect { try Migration.load(directory: directory) } throws: { "\($0)".contains("no NNNN_name.sql migrations") }
    }

    @Test func missingDirectoryIsNamed() {
        #expect { try Migration.load(directory: "/no/such/dir") } throws: { "\($0)".contains("/no/such/dir") }
    }

    private func temporaryDirectory(files: [String: String]) throws -> String {
        let directory = ScratchFolders.url("infmllm-migrations")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return directory.path
    }
}

/// Results gathered from concurrent threads.
final class Outcomes: @unchecked Sendable {
    // Invariant: every access holds `lock`.
    private let lock = NSLock()
    private var storedCounts: [Int] = []
    private var storedErrors: [String] = []

    func add(_ count: Int) { lock.withLock { storedCounts.append(count) } }
    func add(error: Error) { lock.withLock { storedErrors.append("\(error)") } }
    var counts: [Int] { lock.withLock { storedCounts } }
    var errors: [String] { lock.withLock { storedErrors } }
}
