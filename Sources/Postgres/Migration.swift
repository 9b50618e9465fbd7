// One forward-only schema change: a numbered SQL file from the migrations directory.

import Foundation

/// A numbered SQL file, `NNNN_verb_noun.sql`, applied once and never edited afterwards.
public struct Migration: Sendable, Equatable {
    /// The number that orders migrations, from the file name's leading digits.
    public let version: Int
    /// The file name, such as `0001_create_core_schema.sql`.
    public let fileName: String
    /// The statements, run as one script inside a transaction.
    public let sql: String

    public init(version: Int, fileName: String, sql: String) {
        self.version = version
        self.fileName = fileName
        self.sql = sql
    }

    /// Reads every `NNNN_name.sql` file in `directory`, ordered by version.
    ///
    /// Other files are ignored. A `.sql` file whose name does not follow the pattern, two files with one version,
    /// or an unreadable file is an error, because silently skipping a migration would leave the schema behind.
    public static func load(directory: String) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PostgresError.migration(file: directory, reason: "cannot list the migrations directory: \(error)")
        }
        var migrations: [Migration] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let version = version(of: name) else {
                throw PostgresError.migration(
                    file: name, reason: "the name must be NNNN_verb_noun.sql (four digits, lower-case words)")
            }
            if let clash = migrations.first(where: { $0.version == version }) {
                throw PostgresError.migration(
                    file: name, reason: "version \(version) is also used by \(clash.fileName)")
            }
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8)
            else {
                throw PostgresError.migration(file: path, reason: "cannot read the file as UTF-8")
            }
            migrations.append(Migration(version: version, fileName: name, sql: sql))
        }
        // A directory without one (a wrong INFMLLM_MIGRATIONS_DIR) would make every database look current.
        guard !migrations.isEmpty else {
            throw PostgresError.migration(
                file: directory, reason: "no NNNN_name.sql migrations there (is --migrations-dir right?)")
        }
        return migrations.sorted { $0.version < $1.version }
    }

    /// The version in a name like `0001_create_core_schema.sql`, or nil if the name does not follow the pattern.
    static func version(of fileName: String) -> Int? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        let digits = stem.prefix(while: \.isASCIIDigit)
        let rest = stem.dropFirst(digits.count)
        guard digits.count == 4, rest.first == "_", rest.count > 1,
            rest.dropFirst().allSatisfy({ $0 == "_" || $0.isASCIIDigit || ("a"..."z").contains($0) })
        else { return nil }
        return Int(digits)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
