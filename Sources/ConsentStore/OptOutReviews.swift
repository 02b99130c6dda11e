import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// A message that said stop in the person's own words: marketing was withdrawn when it arrived; the DPO reads it
/// and decides whether the person meant every message (`withdrawAll`) or only marketing (`keep`).
public struct OptOutReview: Sendable, Equatable {
    public enum Resolution: String, Sendable, CaseIterable, Codable {
        /// The person meant every message: every purpose on the channel is withdrawn, dated at the message.
        case withdrawAll = "withdraw_all"
        /// Marketing only, as already withdrawn.
        case keep
    }

    public let id: UUID
    public let subjectRef: UUID
    public let channel: MessageChannel
    public let receivedAt: Date
    public let openedAt: Date
    /// The message, decrypted for the DPO; nil once retention deleted it.
    public let text: String?
    public let resolution: Resolution?
    public let resolvedAt: Date?

    public init(
        id: UUID, subjectRef: UUID, channel: MessageChannel, receivedAt: Date, openedAt: Date, text: String?,
        resolution: Resolution?, resolvedAt: Date?
    ) {
        self.id = id
        self.subjectRef = subjectRef
        self.channel = channel
        self.receivedAt = receivedAt
        self.openedAt = openedAt
        self.text = text
        self.resolution = resolution
        self.resolvedAt = resolvedAt
    }
}

public enum OptOutReviewError: Error, Equatable {
    case notFound
    case alreadyResolved(OptOutReview.Resolution)
}

public struct OptOutReviewResolution: ConsentStateChanging {
    public let revoked: [RevokedConsent]
    public let change: ConsentChange?
    public var changes: [ConsentChange] { change.map { [$0] } ?? [] }
}

/// The review queue, read and resolved in the caller's tenant transaction; each step appends its audit event.
public enum OptOutReviews {
    static func open(
        subjectId: UUID, interactionId: UUID, channel: MessageChannel, receivedAt: Date, tenantId: UUID,
        caller: CallerIdentity, on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        let id = UUID()
        try await connection.closeSafeQuery(
            """
            INSERT INTO opt_out_reviews (id, tenant_id, subject_id, interaction_id, channel, received_at)
            VALUES (\(id), \(tenantId), \(subjectId), \(interactionId), \(channel.rawValue), \(receivedAt))
            """, logger: logger)
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .optOutReviewOpened, actor: caller.actor, subjectRef: subjectId,
                    data: [
                        "reviewId": .id(id), "interactionId": .id(interactionId),
                        "channel": .string(channel.rawValue),
                    ])
            ], tenantId: tenantId, on: connection, logger: logger)
        return id
    }

    /// Open reviews oldest first, or every review when `includeResolved`.
    static func list(
        includeResolved: Bool, limit: Int, keyring: TenantKeyring, on connection: PostgresConnection, logger: Logger
    ) async throws -> [OptOutReview] {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT r.id, r.subject_id, r.channel, r.received_at, r.opened_at, r.resolution, r.resolved_at,
                   r.interaction_id, i.text_ciphertext
            FROM opt_out_reviews r LEFT JOIN interactions i ON i.id = r.interaction_id
            WHERE \(includeResolved) OR r.resolution IS NULL
            ORDER BY r.opened_at, r.id LIMIT \(limit)
            """, logger: logger)
        var reviews: [OptOutReview] = []
        for try await (id, subjectId, channel, receivedAt, openedAt, resolution, resolvedAt, interactionId, sealed)
            in rows.decode((UUID, UUID, String, Date, Date, String?, Date?, UUID, ByteBuffer?).self)
        {
            guard let channel = MessageChannel(rawValue: channel) else { continue }
            var text: String?
            if let sealed,
                let handle = try? await SubjectDirectory.open(
                    subjectId, keyring: keyring, on: connection, logger: logger),
                let plain = try? handle.open(
                    Array(sealed.readableBytesView), context: "interaction:\(interactionId.lowercased)")
            {
                text = String(decoding: plain, as: UTF8.self)
            }
            reviews.append(
                OptOutReview(
                    id: id, subjectRef: subjectId, channel: channel, receivedAt: receivedAt, openedAt: openedAt,
                    text: text, resolution: resolution.flatMap(OptOutReview.Resolution.init(rawValue:)),
                    resolvedAt: resolvedAt))
        }
        return reviews
    }

    /// Resolves an open review once: `withdrawAll` records a stop for every purpose, dated at the message.
    static func resolve(
        _ id: UUID, as resolution: OptOutReview.Resolution, tenantId: UUID, caller: CallerIdentity,
        keyring: TenantKeyring, on connection: PostgresConnection, logger: Logger
    ) async throws -> OptOutReviewResolution {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT r.subject_id, r.channel, r.received_at, r.resolution, s.blind_index
            FROM opt_out_reviews r JOIN subjects s ON s.id = r.subject_id
            WHERE r.id = \(id) FOR UPDATE OF r
            """, logger: logger)
        guard
            let (subjectId, channelText, receivedAt, existing, blindIndex) = try await rows.decode(
                (UUID, String, Date, String?, ByteBuffer?).self
            ).array().first, let channel = MessageChannel(rawValue: channelText)
        else { throw OptOutReviewError.notFound }
        if let existing {
            throw OptOutReviewError.alreadyResolved(OptOutReview.Resolution(rawValue: existing) ?? .keep)
        }
        var revoked: [RevokedConsent] = []
        if resolution == .withdrawAll {
            revoked = try await ConsentLedger.withdraw(
                subjectId: subjectId, channel: channel, purposes: nil, stoppedAt: receivedAt, source: .optOutReview,
                tenantId: tenantId, caller: caller, on: connection, logger: logger)
        }
        try await connection.closeSafeQuery(
            """
            UPDATE opt_out_reviews SET resolution = \(resolution.rawValue), resolved_at = now(),
                   resolved_by = \(caller.keyId)
            WHERE id = \(id)
            """, logger: logger)
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .optOutReviewResolved, actor: caller.actor, subjectRef: subjectId,
                    data: [
                        "reviewId": .id(id), "resolution": .string(resolution.rawValue),
                        "consentsWithdrawn": .int(Int64(revoked.count)),
                    ])
            ], tenantId: tenantId, on: connection, logger: logger)
        var change: ConsentChange?
        if let blindIndex {
            change = try await ConsentLedger.changePosition(
                tenantId: tenantId, channel: channel, blindIndex: Array(blindIndex.readableBytesView),
                on: connection, logger: logger)
        }
        return OptOutReviewResolution(revoked: revoked, change: change)
    }
}

/// The DPO's side of the review queue: reads, and the one write, a unit of work.
public struct OptOutReviewDesk: Sendable {
    let database: ConsentDatabase

    public func list(tenantId: UUID, includeResolved: Bool, limit: Int = 200, logger: Logger) async throws
        -> [OptOutReview]
    {
        let keyring = database.keyring
        return try await database.read(tenantId, logger: logger) { connection in
            try await OptOutReviews.list(
                includeResolved: includeResolved, limit: limit, keyring: keyring, on: connection, logger: logger)
        }
    }

    public func resolve(_ id: UUID, as resolution: OptOutReview.Resolution, caller: CallerIdentity)
        -> UnitOfWork<OptOutReviewResolution>
    {
        UnitOfWork(tenantId: caller.tenantId) { [keyring = database.keyring] connection, logger in
            try await OptOutReviews.resolve(
                id, as: resolution, tenantId: caller.tenantId, caller: caller, keyring: keyring, on: connection,
                logger: logger)
        }
    }
}

extension ConsentDatabase {
    public var optOutReviews: OptOutReviewDesk { OptOutReviewDesk(database: self) }
}
