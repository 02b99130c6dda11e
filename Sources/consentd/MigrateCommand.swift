import ArgumentParser
import ConsentCore
import ConsentStore
import Foundation
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending migrations and (re)grant the runtime role; safe to run from several instances.",
        discussion: """
            Run with the owner's DATABASE_URL. Creates the login role named by CONSENTD_APP_ROLE (default \
            consentd_app, no password) if missing and grants it only what the server needs, with its session \
            limits: CONSENTD_STATEMENT_TIMEOUT_SECONDS (25), CONSENTD_LOCK_TIMEOUT_SECONDS (10), \
            CONSENTD_IDLE_IN_TRANSACTION_SECONDS (20), and server-side TCP keepalive. With \
            CONSENTD_MASTER_KEY (and CONSENTD_UNWRAP_MASTER_KEYS during a rotation) it then moves e-mail subjects \
            stored under an earlier normalisation to today's, merging the ones that turn out to be one person; \
            that is safe to repeat, and prints counts only.
            """)

    /// What happened to e-mail subjects after the schema migrations.
    enum Reindexing: Sendable {
        case done(ReindexReport)
        /// No master key: the count of e-mail subjects that could not be checked.
        case skipped(held: Int)
    }

    func run() async throws {
        let logger = Logger(label: "consentd.migrate")
        let (url, role): (DatabaseURL, String)
        let keyring: TenantKeyring?
        let limits: RuntimeSessionLimits
        do {
            url = try EnvironmentReader.databaseURL(environment)
            role = try EnvironmentReader.roleName(environment, "CONSENTD_APP_ROLE", default: "consentd_app")
            limits = try RuntimeSessionLimits(environment: environment)
            keyring = try Self.keyring()
        } catch {
            throw CommandFailure(error.description)
        }
        let runner = try MigrationRunner.bundled()
        let reindexing = try await withRunningClient(url, logger: logger) { client in
            let applied = try await runner.migrate(client: client, appRole: role, limits: limits, logger: logger)
            // Before re-indexing, which may fail on its own (a master key that opens nothing): the schema is done.
            print(
                "applied \(applied.count) migration(s); schema at version \(runner.files.last?.version ?? 0); role \(role) granted"
            )
            guard let keyring else {
                return Reindexing.skipped(
                    held: try await SubjectReindexer.heldEmailSubjects(client: client, logger: logger))
            }
            return .done(try await SubjectReindexer(client: client, keyring: keyring).run(logger: logger))
        }
        switch reindexing {
        case .skipped(let held) where held > 0:
            print(
                "e-mail subjects not re-indexed: CONSENTD_MASTER_KEY is not set; \(held) e-mail subject(s) may be stored under the earlier normalisation, so set it and run `consentd migrate` again"
            )
        case .skipped:
            break
        case .done(let report):
            print("e-mail subjects: \(report.reindexed) re-indexed, \(report.merged) merged into another subject")
            if report.refused > 0 {
                print(
                    "\(report.refused) e-mail subject(s) hold an address that today's rules refuse and were left as they are"
                )
            }
            if report.unreadable > 0 {
                throw CommandFailure(
                    "\(report.unreadable) e-mail subject(s) open under none of the configured master keys and were not re-indexed; set CONSENTD_UNWRAP_MASTER_KEYS and run again"
                )
            }
        }
    }

    /// The keyring to re-index with, or nil without CONSENTD_MASTER_KEY.
    static func keyring() throws(ConfigurationError) -> TenantKeyring? {
        guard let master = environment["CONSENTD_MASTER_KEY"], !master.isEmpty else { return nil }
        return TenantKeyring(
            masterKey: try EnvironmentReader.key32(environment, "CONSENTD_MASTER_KEY", purpose: "the master key"),
            unwrapOnly: try EnvironmentReader.unwrapMasterKeys(environment))
    }
}
