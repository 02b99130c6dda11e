import Foundation
import Logging
import PostgresNIO

/// What the retention job does for webhooks: announce request deadlines (through the outbox like any change) and
/// delete the delivered history.
extension ConsentDatabase {
    static let requestsActor = "system:retention"

    /// Announces, once, each pending data-subject request due within `withinDays` (`request.due_soon`, which
    /// subscribed endpoints receive). Run by the retention job; answers how many it announced.
    public func announceRequestsDueSoon(withinDays: Int, logger: Logger) async throws -> Int {
        try await client.withUnwrappedTransaction(logger: logger) { connection in
            try await connection.closeSafeQuery(
                "SELECT app_announce_requests_due_soon(\(withinDays)::int, \(Self.requestsActor))", logger: logger
            ).decode(Int.self).array().first ?? 0
        }
    }

    /// Deletes deliveries delivered more than `olderThanDays` ago, their attempts, and the events no delivery names
    /// any more. Run by the retention job; answers how many deliveries went.
    public func pruneWebhookDeliveries(olderThanDays: Int, logger: Logger) async throws -> Int {
        try await client.withUnwrappedTransaction(logger: logger) { connection in
            try await connection.closeSafeQuery(
                "SELECT app_prune_webhook_deliveries(\(olderThanDays)::int)", logger: logger
            ).decode(Int.self).array().first ?? 0
        }
    }
}
