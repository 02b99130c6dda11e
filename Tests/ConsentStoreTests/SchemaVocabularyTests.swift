import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import PostgresNIO
import Testing

/// The core's enums and the schema's CHECK constraints name the same values: a status or an action that one side
/// knows and the other refuses would fail only when first written.
@Suite struct SchemaVocabularyTests {
    /// The quoted values in a CHECK constraint's definition, as PostgreSQL prints it.
    func allowedValues(_ constraint: String, on table: String, client: PostgresClient, logger: Logger) async throws
        -> Set<String>
    {
        let rows = try await client.query(
            """
            SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
            WHERE c.conname = \(constraint) AND c.conrelid = \(table)::regclass
            """, logger: logger)
        var definitions: [String] = []
        for try await definition in rows.decode(String.self) { definitions.append(definition) }
        let definition = try #require(definitions.first, "no constraint \(constraint) on \(table)")
        let quoted = try Regex(#"'([^']*)'"#)
        return Set(definition.matches(of: quoted).compactMap { $0.output[1].substring.map(String.init) })
    }

    @Test func consentStatusesAreTheConstraintsValues() async throws {
        let database = try await TestDatabase.fresh()
        try await database.withClient(\.owner) { client throws in
            let allowed = try await allowedValues(
                "consents_status_check", on: "consents", client: client, logger: database.logger)
            #expect(allowed == Set(ConsentStatus.allCases.map(\.rawValue)))
        }
    }

    @Test func auditActionsAreTheConstraintsValues() async throws {
        let database = try await TestDatabase.fresh()
        try await database.withClient(\.owner) { client throws in
            let allowed = try await allowedValues(
                "audit_events_action_known", on: "audit_events", client: client, logger: database.logger)
            #expect(allowed == Set(AuditAction.allCases.map(\.rawValue)))
        }
    }

    /// The outbox trigger's mapping from audit actions to webhook event types (0019, `app_webhook_type`) produces
    /// exactly the types an endpoint may subscribe to; an action mapped to a type nobody can subscribe to, or a
    /// type no action produces, would be a subscription that never fires.
    @Test func webhookTypesAreWhatTheOutboxProduces() async throws {
        let database = try await TestDatabase.fresh()
        try await database.withClient(\.owner) { client throws in
            var produced: Set<String> = []
            var mapping: [String: String] = [:]
            for action in AuditAction.allCases {
                let rows = try await client.query(
                    "SELECT app_webhook_type(\(action.rawValue))", logger: database.logger)
                for try await type in rows.decode(String?.self) {
                    if let type {
                        produced.insert(type)
                        mapping[action.rawValue] = type
                    }
                }
            }
            #expect(produced == Set(WebhookEventType.subscribable.map(\.rawValue)))
            #expect(mapping["consent.confirmed"] == "consent.granted")
            #expect(mapping["consent.pending"] == nil && mapping["import.batch_recorded"] == nil)
        }
    }
}
