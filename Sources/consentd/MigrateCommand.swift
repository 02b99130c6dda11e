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
            consentd_app, no password) if missing and grants it only what the server needs.
            """)

    func run() async throws {
        let logger = Logger(label: "consentd.migrate")
        let (url, role): (DatabaseURL, String)
        do {
            url = try EnvironmentReader.databaseURL(environment)
            role = try EnvironmentReader.roleName(environment, "CONSENTD_APP_ROLE", default: "consentd_app")
        } catch {
            throw CommandFailure(error.description)
        }
        let runner = try MigrationRunner.bundled()
        let applied = try await withRunningClient(url, logger: logger) { client in
            try await runner.migrate(client: client, appRole: role, logger: logger)
        }
        print(
            "applied \(applied.count) migration(s); schema at version \(runner.files.last?.version ?? 0); role \(role) granted"
        )
    }
}
