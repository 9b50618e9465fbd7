// Applies pending migrations, one transaction each, and records them in `schema_migrations`.

/// A migration that the database has recorded as applied.
public struct AppliedMigration: Sendable, Equatable {
    public let version: Int
    public let fileName: String
    /// SHA-256 of the file's text when it was applied, in hex.
    public let checksum: String
}

/// Brings a database's schema up to date with a list of migrations.
///
/// Concurrent runs (two workers starting at once) are serialised by an advisory lock, so each migration is
/// applied exactly once. A migration whose file changed after it was applied is reported, never re-applied.
public struct Migrator {
    /// The advisory lock key that serialises concurrent `migrate` runs on one database.
    static let lockKey = 7_240_101_311

    private let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Applies every migration in `migrations` that the database has not recorded, in version order.
    ///
    /// - Returns: the migrations applied by this call; empty when the schema was already current.
    /// - Throws: `PostgresError.migration` when an applied migration's file has changed or is missing, or when a
    ///   migration fails (its transaction is rolled back and later ones are not attempted).
    @discardableResult
    public func migrate(_ migrations: [Migration]) throws -> [Migration] {
        try connection.execute("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try createLedger()
        let pending = try check(migrations, against: applied())
        for migration in pending {
            try apply(migration)
        }
        return pending
    }

    /// The migrations recorded as applied, in version order; empty on a database never migrated.
    public func applied() throws -> [AppliedMigration] {
        let exists = try connection.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        guard try exists.first?.bool("present") == true else { return [] }
        return try connection.execute("SELECT version, file_name, checksum FROM schema_migrations ORDER BY version")
            .map { row in
                AppliedMigration(
                    version: try row.int("version"), fileName: try row.string("file_name"),
                    checksum: try row.string("checksum"))
            }
    }

    /// The migrations in `migrations` that the database has not applied yet.
    public func pending(_ migrations: [Migration]) throws -> [Migration] {
        try check(migrations, against: applied())
    }

    private func createLedger() throws {
        try connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                file_name   text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """)
    }

    private func check(_ migrations: [Migration], against applied: [AppliedMigration]) throws -> [Migration] {
        for record in applied {
            guard let migration = migrations.first(where: { $0.version == record.version }) else {
                throw PostgresError.migration(
                    file: record.fileName,
                    reason: "the database has applied version \(record.version), which this build does not have; "
                        + "use a build at least as new as the database")
            }
            let checksum = try self.checksum(of: migration)
            guard checksum == record.checksum else {
                throw PostgresError.migration(
                    file: migration.fileName,
                    reason: "the file changed after it was applied (checksum \(record.checksum.prefix(12)) then, "
                        + "\(checksum.prefix(12)) now); migrations are forward-only, so add a new one instead")
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        return migrations.filter { !appliedVersions.contains($0.version) }
    }

    private func apply(_ migration: Migration) throws {
        do {
            try connection.transaction {
                try connection.executeScript(migration.sql)
                try connection.execute(
                    """
                    INSERT INTO schema_migrations (version, file_name, checksum)
                    VALUES (\(migration.version), \(migration.fileName), \(try checksum(of: migration)))
                    """)
            }
        } catch let error as PostgresError {
            throw PostgresError.migration(file: migration.fileName, reason: "\(error)")
        }
    }

    /// SHA-256 of the file's text, computed by the server so that no hashing code is needed here.
    private func checksum(of migration: Migration) throws -> String {
        try connection.execute("SELECT encode(sha256(convert_to(\(migration.sql), 'UTF8')), 'hex') AS digest")
            .first?.string("digest") ?? ""
    }
}
