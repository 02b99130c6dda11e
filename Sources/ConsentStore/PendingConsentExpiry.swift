import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// Expires double opt-ins that nobody confirmed within the policy's lifetime, one tenant per transaction. Checks
/// already refuse a pending consent; expiry makes it final, so that a late "YES" confirms nothing and a new opt-in
/// starts a new consent. Runs beside the retention job in one instance at a time.
public struct PendingConsentExpiry: Sendable {
    let client: PostgresClient
    let lifetime: TimeInterval

    public init(client: PostgresClient, lifetime: TimeInterval) {
        self.client = client
        self.lifetime = lifetime
    }

    public static let actor = "system:expiry"

    /// How many consents expired, over every tenant.
    @discardableResult
    public func expireAll(logger: Logger) async throws -> Int {
        let tenants = try await TenantStore.ids(client: client, logger: logger)
        var total = 0
        for tenant in tenants { total += try await expire(tenantId: tenant, logger: logger) }
        return total
    }

    public func expire(tenantId: UUID, logger: Logger) async throws -> Int {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                UPDATE consents c SET status = 'expired', expired_at = now()
                FROM subjects s
                WHERE s.id = c.subject_id AND c.tenant_id = \(tenantId) AND c.status = 'pending'
                  AND c.created_at <= now() - make_interval(secs => \(lifetime))
                RETURNING c.id, c.purpose, c.subject_id, c.channel, s.blind_index
                """, logger: logger)
            var events: [AuditEvent] = []
            var changed: [String: (MessageChannel, [UInt8])] = [:]
            for try await (id, purpose, subjectId, channelText, blindIndex) in rows.decode(
                (UUID, String, UUID, String, ByteBuffer?).self)
            {
                events.append(
                    AuditEvent(
                        action: .consentExpired, actor: Self.actor, subjectRef: subjectId,
                        data: ["consentId": .id(id), "purpose": .string(purpose), "channel": .string(channelText)]))
                if let channel = MessageChannel(rawValue: channelText), let blindIndex {
                    changed[subjectId.lowercased] = (channel, Array(blindIndex.readableBytesView))
                }
            }
            try await AuditTrail.append(events, tenantId: tenantId, on: connection, logger: logger)
            for (channel, blindIndex) in changed.values {
                _ = try await ConsentLedger.changePosition(
                    tenantId: tenantId, channel: channel, blindIndex: blindIndex, on: connection, logger: logger)
            }
            return events.count
        }
    }
}
