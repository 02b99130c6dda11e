import ConsentCore
import Foundation
import Logging
import PostgresNIO

public struct PurgeCounts: Sendable, Equatable {
    public var interactions: Int = 0
    public var provenance: Int = 0
    public var idempotencyRecords: Int = 0
    /// Consent sessions that ended without a consent, and WhatsApp message ids, past the idempotency period.
    public var sessionsAndMessageIds: Int = 0
    public var total: Int { interactions + provenance + idempotencyRecords + sessionsAndMessageIds }
    public init() {}
}

/// Deletes what the retention policy no longer allows keeping, one tenant per transaction, and records each
/// tenant's purge in its audit log as counts and cut-off times only.
public struct RetentionPurger: Sendable {
    let client: PostgresClient
    let policy: RetentionPolicy

    public init(client: PostgresClient, policy: RetentionPolicy) {
        self.client = client
        self.policy = policy
    }

    /// Purges every tenant as of `now` (the database's clock when nil).
    @discardableResult
    public func purgeAll(now: Date? = nil, logger: Logger) async throws -> PurgeCounts {
        let tenants = try await client.withOperatorTransaction(logger: logger) { connection in
            // The change log holds blind indexes only as long as listeners need them (a second or so); five minutes bounds
            // how long one outlives its subject's erasure. Operational, so not counted in the tenants' audit.
            try await connection.closeSafeQuery(
                """
                DELETE FROM consent_change_log
                WHERE recorded_at < coalesce(\(now)::timestamptz, now()) - interval '5 minutes'
                """, logger: logger)
            return try await connection.closeSafeQuery("SELECT id FROM tenants ORDER BY id", logger: logger).decode(
                UUID.self
            )
            .array()
        }
        var total = PurgeCounts()
        for tenant in tenants {
            let counts = try await purge(tenantId: tenant, now: now, logger: logger)
            total.interactions += counts.interactions
            total.provenance += counts.provenance
            total.idempotencyRecords += counts.idempotencyRecords
            total.sessionsAndMessageIds += counts.sessionsAndMessageIds
        }
        return total
    }

    public func purge(tenantId: UUID, now: Date? = nil, logger: Logger) async throws -> PurgeCounts {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let clock =
                try await connection.closeSafeQuery("SELECT coalesce(\(now)::timestamptz, now())", logger: logger)
                .decode(Date.self).array().first ?? Date()
            let interactionCutoff = clock.addingTimeInterval(-Double(policy.interactionDays) * 86_400)
            let idempotencyCutoff = clock.addingTimeInterval(-Double(policy.idempotencyDays) * 86_400)
            let provenanceCutoff =
                try await connection.closeSafeQuery(
                    "SELECT \(clock)::timestamptz - make_interval(years => \(policy.withdrawnProvenanceYears)::int)",
                    logger: logger
                ).decode(Date.self).array().first ?? clock

            var counts = PurgeCounts()
            counts.interactions = try await connection.closeSafeQuery(
                """
                DELETE FROM interactions WHERE tenant_id = \(tenantId) AND occurred_at < \(interactionCutoff) RETURNING id
                """, logger: logger
            ).collect().count
            // A collection's provenance goes once every consent it supports was withdrawn before the cut-off.
            counts.provenance = try await connection.closeSafeQuery(
                """
                UPDATE collections k SET provenance_ciphertext = NULL
                WHERE k.tenant_id = \(tenantId) AND k.provenance_ciphertext IS NOT NULL
                  AND NOT EXISTS (
                      SELECT 1 FROM consent_evidence e JOIN consents c ON c.id = e.consent_id
                      WHERE e.collection_id = k.id
                        AND (c.status <> 'withdrawn' OR c.revoked_at >= \(provenanceCutoff)))
                RETURNING k.id
                """, logger: logger
            ).collect().count
            counts.idempotencyRecords = try await connection.closeSafeQuery(
                """
                DELETE FROM idempotency_keys WHERE tenant_id = \(tenantId) AND created_at < \(idempotencyCutoff) RETURNING key
                """, logger: logger
            ).collect().count
            // A session that recorded a consent stays with its collection as evidence; the others only point at a
            // person and have no use once the retry period is over. Message ids only guard against Meta's retries.
            counts.sessionsAndMessageIds = try await connection.closeSafeQuery(
                """
                DELETE FROM consent_sessions
                WHERE tenant_id = \(tenantId) AND collection_id IS NULL AND expires_at < \(idempotencyCutoff)
                RETURNING id
                """, logger: logger
            ).collect().count
            counts.sessionsAndMessageIds += try await connection.closeSafeQuery(
                """
                DELETE FROM whatsapp_messages_seen WHERE tenant_id = \(tenantId) AND received_at < \(idempotencyCutoff)
                RETURNING interaction_id
                """, logger: logger
            ).collect().count
            if counts.total > 0 {
                try await AuditTrail.append(
                    [
                        AuditEvent(
                            action: .retentionPurged, actor: "system:retention", subjectRef: nil,
                            data: [
                                "interactionsDeleted": .int(Int64(counts.interactions)),
                                "interactionsBefore": .string(RFC3339.format(interactionCutoff)),
                                "provenanceCleared": .int(Int64(counts.provenance)),
                                "withdrawnBefore": .string(RFC3339.format(provenanceCutoff)),
                                "idempotencyRecordsDeleted": .int(Int64(counts.idempotencyRecords)),
                                "sessionsAndMessageIdsDeleted": .int(Int64(counts.sessionsAndMessageIds)),
                            ])
                    ], tenantId: tenantId, on: connection, logger: logger)
            }
            return counts
        }
    }
}
