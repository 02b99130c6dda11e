import ConsentCore
import Foundation

/// Where `initdb` and `pg_ctl` live: first PATH, then Debian's `/usr/lib/postgresql/<version>/bin` (newest first),
/// because Debian's `postgresql` package does not put them on PATH.
public struct PostgresBinaries: Sendable, Equatable {
    public let initdb: String
    public let pgCtl: String

    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(PostgresNotInstalled)
        -> PostgresBinaries
    {
        let fileManager = FileManager.default
        var directories = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let debianRoot = "/usr/lib/postgresql"
        let versions = ((try? fileManager.contentsOfDirectory(atPath: debianRoot)) ?? [])
            .compactMap { Int($0) }.sorted(by: >)
        directories += versions.map { "\(debianRoot)/\($0)/bin" }
        for directory in directories {
            let initdb = "\(directory)/initdb"
            let pgCtl = "\(directory)/pg_ctl"
            if fileManager.isExecutableFile(atPath: initdb), fileManager.isExecutableFile(atPath: pgCtl) {
                return PostgresBinaries(initdb: initdb, pgCtl: pgCtl)
            }
        }
        throw PostgresNotInstalled()
    }
}

public struct PostgresNotInstalled: Error, CustomStringConvertible {
    public static let installCommand = "apt-get update && apt-get install -y postgresql"
    public var description: String {
        let command = geteuid() == 0 ? Self.installCommand : "sudo sh -c '\(Self.installCommand)'"
        return
            "PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin). Install it with: \(command)"
    }
}

extension PostgresBinaries {
    /// `pg_dump` from the same installation as `initdb`, so its version matches the server's.
    public var pgDump: String {
        URL(fileURLWithPath: initdb).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(
            "pg_dump"
        ).path
    }
}

/// What an operator's backup holds: `pg_dump` of one database as plain SQL, schema and data.
public enum DatabaseDump {
    public static func plainSQL(_ url: DatabaseURL) throws -> String {
        let binaries = try PostgresBinaries.locate()
        return try ChildProcess.run(binaries.pgDump, ["--no-owner", "--dbname=\(url.urlString)"])
    }
}
