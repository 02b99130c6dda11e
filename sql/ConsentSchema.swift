import ConsentCore
import Foundation

/// The SQL that defines the database, shipped inside the binary's resource bundle.
public enum ConsentSchema {
    /// `sql/migrations/NNNN_name.sql`, in version order.
    public static func migrations() throws -> [MigrationFile] {
        guard let directory = Bundle.module.url(forResource: "migrations", withExtension: nil) else {
            throw MissingResource(name: "migrations")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        return try names.compactMap { name in
            let sql = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            return MigrationFile(fileName: name, sql: sql)
        }.sorted { $0.version < $1.version }
    }

    /// The runtime role's privileges, with `{{app_role}}` standing for its quoted name.
    public static func runtimeGrants() throws -> String {
        guard let url = Bundle.module.url(forResource: "roles/runtime_grants", withExtension: "sql") else {
            throw MissingResource(name: "roles/runtime_grants.sql")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    public struct MissingResource: Error, CustomStringConvertible {
        let name: String
        public var description: String {
            "the schema resource \(name) is missing next to the binary; deploy the consentledger_ConsentSchema.resources folder with it"
        }
    }
}
