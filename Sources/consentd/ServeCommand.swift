import ArgumentParser
import ConsentCore
import ConsentStore
import Foundation
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the API in production, configured by the environment.",
        discussion: """
            Reads DATABASE_URL (the runtime role, not the owner), CONSENTD_MASTER_KEY and CONSENTD_SIGNING_KEY \
            (base64 of 32 random bytes each), CONSENTD_HOST (default 127.0.0.1), CONSENTD_PORT (default 8080), CONSENTD_AUDIT_ORIGIN (default \
            consentledger: names this deployment in audit checkpoints) and \
            CONSENTD_ALLOW_PRIVILEGED_ROLE. Refuses to start when one is missing or malformed, when migrations are \
            pending, or when the role is a superuser or owns the tables.
            """)

    func run() async throws {
        let configuration: ServeConfiguration
        do {
            configuration = try ServeConfiguration.parse(environment: environment)
        } catch {
            throw CommandFailure(error.description)
        }
        let logger = Logger(label: "consentd")
        try await ServiceStarter.run(configuration, logger: logger) { port in
            logger.info("serving", metadata: ["address": "\(configuration.host):\(port)"])
        }
    }
}
