import Crypto

/// One file of `sql/migrations`: `NNNN_name.sql`.
public struct MigrationFile: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// Hex SHA-256 of the file's bytes, recorded when applied so later edits are caught.
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hash(data: Array(sql.utf8)).hexString
    }

    /// `0001_init.sql` → version 1, name `init`; anything else is not a migration file.
    public init?(fileName: String, sql: String) {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        guard digits.count == 4, digits.allSatisfy(\.isASCII), let version = Int(digits), version > 0 else {
            return nil
        }
        let name = stem[stem.index(after: underscore)...]
        guard !name.isEmpty else { return nil }
        self.init(version: version, name: String(name), sql: sql)
    }
}

/// A row of `schema_migrations`.
public struct AppliedMigration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let checksum: String
    public init(version: Int, name: String, checksum: String) {
        self.version = version
        self.name = name
        self.checksum = checksum
    }
}

public enum MigrationProblem: Error, Equatable, CustomStringConvertible {
    case duplicateVersion(Int)
    case changedAfterApply(version: Int, name: String)
    case unknownApplied(version: Int, name: String)

    public var description: String {
        switch self {
        case .duplicateVersion(let version):
            "two migration files share version \(version)"
        case .changedAfterApply(let version, let name):
            "migration \(version) (\(name)) was changed after it was applied; write a new migration instead"
        case .unknownApplied(let version, let name):
            "the database has migration \(version) (\(name)) that this build does not know; it is newer than this binary"
        }
    }
}

/// Decides what to apply: every applied migration must match its file exactly, and the rest run in version order.
public enum MigrationPlan {
    public static func pending(files: [MigrationFile], applied: [AppliedMigration]) throws(MigrationProblem)
        -> [MigrationFile]
    {
        var byVersion: [Int: MigrationFile] = [:]
        for file in files {
            guard byVersion.updateValue(file, forKey: file.version) == nil else {
                throw .duplicateVersion(file.version)
            }
        }
        for record in applied.sorted(by: { $0.version < $1.version }) {
            guard let file = byVersion[record.version] else {
                throw .unknownApplied(version: record.version, name: record.name)
            }
            guard file.checksum == record.checksum else {
                throw .changedAfterApply(version: record.version, name: record.name)
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        return files.filter { !appliedVersions.contains($0.version) }.sorted { $0.version < $1.version }
    }
}
