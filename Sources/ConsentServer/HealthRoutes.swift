import ConsentStore
import Hummingbird
import Logging

/// `/healthz` answers while the process runs; `/readyz` only when the database answers and its schema is
/// exactly the one this build expects, so a load balancer never sends traffic to an instance that cannot serve it.
struct HealthRoutes {
    let database: ConsentDatabase
    let schema: MigrationRunner

    func register(on router: Router<ConsentRequestContext>) {
        router.get("/healthz") { _, _ in Status(status: "ok") }
        router.get("/readyz") { _, context in try await ready(context: context) }
    }

    struct Status: ResponseEncodable {
        let status: String
    }

    func ready(context: ConsentRequestContext) async throws -> Status {
        let state: SchemaState
        do {
            let (database, schema, logger) = (self.database, self.schema, context.logger)
            state = try await withDeadline(.seconds(2), grace: .seconds(1)) {
                try await database.schemaState(schema, logger: logger)
            }
        } catch {
            context.logger.warning("readiness: database unreachable", metadata: ["type": "\(type(of: error))"])
            throw APIError(.serviceUnavailable, code: "not_ready", message: "the database does not answer")
        }
        guard state == .current else {
            throw APIError(.serviceUnavailable, code: "not_ready", message: state.explanation)
        }
        return Status(status: "ready")
    }
}
