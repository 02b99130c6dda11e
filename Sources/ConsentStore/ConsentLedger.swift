import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// An opt-in as the API received it, validated and normalised.
public struct OptIn: Sendable {
    public let subject: SubjectIdentifier
    public let purposes: [String]
    public let noticeId: UUID
    public let method: CollectionMethod
    public let collectedAt: Date
    public let provenance: Provenance

    public init(
        subject: SubjectIdentifier, purposes: [String], noticeId: UUID, method: CollectionMethod, collectedAt: Date,
        provenance: Provenance
    ) {
        self.subject = subject
        self.purposes = purposes
        self.noticeId = noticeId
        self.method = method
        self.collectedAt = collectedAt
        self.provenance = provenance
    }
}

public struct RecordedConsent: Sendable, Equatable {
    public let id: UUID
    public let purpose: String
    public let status: String
    public let grantedAt: Date?
}

/// A write's result that carries the position of its change.
public protocol ConsentChangeResult {
    var token: ConsistencyToken { get }
}

public struct OptInResult: Sendable, ConsentChangeResult {
    public let consents: [RecordedConsent]
    /// The collection this opt-in recorded: its notice, method and provenance.
    public let collectionId: UUID
    public let token: ConsistencyToken
}

public struct RevokedConsent: Sendable, Equatable {
    public let id: UUID
    public let purpose: String
    public let revokedAt: Date
}

public struct RevocationResult: Sendable, ConsentChangeResult {
    public let revoked: [RevokedConsent]
    public let token: ConsistencyToken
}

public struct InteractionResult: Sendable, ConsentChangeResult {
    public let interactionId: UUID
    public let window: ServiceWindow
    public let revoked: [RevokedConsent]
    /// Double opt-ins that this reply confirmed.
    public let confirmed: [RecordedConsent]
    public let token: ConsistencyToken
}

public enum ConsentWriteError: Error, Equatable {
    case noticeNotFound
    case noticeForAnotherChannel(MessageChannel)
    case purposesNotInNotice([String])
    case unknownPurposes([String])
    /// An imported opt-in for a person on the suppression list (erased after withdrawing or objecting).
    case suppressed
}

/// The consent lifecycle's writes. Each runs inside the caller's tenant transaction (see `TenantWriter`), and
/// appends its audit events and takes its consistency position in that same transaction.
public enum ConsentLedger {
    /// With `suppression` on, an opt-in by `import` for a person on the suppression list is refused; one the
    /// person gave themselves (checkbox, double opt-in, verbal, api) is a fresh consent and is recorded.
    public static func recordOptIn(
        _ optIn: OptIn, blindIndex: [UInt8], tenantId: UUID, caller: CallerIdentity, keyring: TenantKeyring,
        suppression: Bool = true, pendingLifetime: TimeInterval = CollectionPolicy.default.pendingConsentLifetime,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> OptInResult {
        guard let notice = try await NoticeStore.get(optIn.noticeId, on: connection, logger: logger) else {
            throw ConsentWriteError.noticeNotFound
        }
        guard notice.channel == optIn.subject.channel else {
            throw ConsentWriteError.noticeForAnotherChannel(notice.channel)
        }
        let uncovered = optIn.purposes.filter { !notice.purposes.contains($0) }
        if !uncovered.isEmpty {
            let unknown = try await PurposeStore.unknown(uncovered, on: connection, logger: logger)
            throw unknown.isEmpty ? ConsentWriteError.purposesNotInNotice(uncovered) : .unknownPurposes(unknown)
        }

        let subject = try await SubjectDirectory.findOrCreate(
            optIn.subject, blindIndex: blindIndex, tenantId: tenantId, keyring: keyring, on: connection, logger: logger)
        // Checked after the subject is found or made: that statement waits out a concurrent erasure, so this one
        // sees the suppression entry that erasure committed.
        if suppression, optIn.method == .import,
            try await SuppressionList.contains(optIn.subject, tenantId: tenantId, keyring: keyring, on: connection, logger: logger)
        {
            throw ConsentWriteError.suppressed
        }
        let collectionId = UUID()
        let provenance = subject.seal(try JSONEncoder().encode(optIn.provenance), context: "collection:\(collectionId.lowercased)")
        let status = optIn.method.startsPending ? "pending" : "granted"
        let newIds = optIn.purposes.map { _ in UUID() }
        // The collection and the new consents in one statement (one round trip).
        var recorded = try await decodeConsents(
            connection.query(
                """
                WITH collection AS (
                    INSERT INTO collections (id, tenant_id, subject_id, notice_id, method, collected_at, received_at,
                                             recorded_by, provenance_ciphertext)
                    VALUES (\(collectionId), \(tenantId), \(subject.id), \(notice.id), \(optIn.method.rawValue),
                            \(optIn.collectedAt), now(), \(caller.keyId), \(ByteBuffer(bytes: provenance)))
                )
                INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, notice_id, status, created_at, granted_at)
                SELECT w.id, \(tenantId), \(subject.id), \(notice.channel.rawValue), w.purpose, \(notice.id), \(status),
                       now(), CASE WHEN \(status) = 'granted' THEN now() END
                FROM unnest(\(newIds)::uuid[], \(optIn.purposes)::text[]) AS w(id, purpose)
                ON CONFLICT (subject_id, purpose) WHERE status IN ('granted', 'pending') DO NOTHING
                RETURNING id, purpose, status, granted_at
                """, logger: logger))
        var created = Set(recorded.map(\.id))
        var events: [AuditEvent] = []
        var expiredEvents: [AuditEvent] = []

        // Purposes already active keep their one consent; this collection becomes more evidence for it. A
        // direct opt-in also confirms one that was waiting for a double opt-in. One that waited too long
        // expires here (if the expiry job has not reached it yet), and this opt-in starts a new consent.
        var existing = optIn.purposes.filter { purpose in !recorded.contains { $0.purpose == purpose } }
        if !existing.isEmpty {
            let stale = try await expire(
                subjectId: subject.id, purposes: existing, olderThan: pendingLifetime, channel: notice.channel,
                actor: caller.actor, on: connection, logger: logger)
            expiredEvents = stale.events
            if !stale.purposes.isEmpty {
                let fresh = try await decodeConsents(
                    connection.query(
                        """
                        INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, notice_id, status, created_at, granted_at)
                        SELECT gen_random_uuid(), \(tenantId), \(subject.id), \(notice.channel.rawValue), w.purpose, \(notice.id),
                               \(status), now(), CASE WHEN \(status) = 'granted' THEN now() END
                        FROM unnest(\(stale.purposes)::text[]) AS w(purpose)
                        RETURNING id, purpose, status, granted_at
                        """, logger: logger))
                recorded += fresh
                created.formUnion(fresh.map(\.id))
                existing.removeAll { stale.purposes.contains($0) }
            }
        }
        if !existing.isEmpty {
            let rows =
                optIn.method.startsPending
                ? []
                : try await decodeConsents(
                    connection.query(
                        """
                        UPDATE consents SET status = 'granted', granted_at = now()
                        WHERE subject_id = \(subject.id) AND purpose = ANY(\(existing)::text[]) AND status = 'pending'
                        RETURNING id, purpose, status, granted_at
                        """, logger: logger))
            for consent in rows {
                events.append(consentEvent("consent.confirmed", consent, notice: notice, collectionId: collectionId, method: optIn.method, subject: subject.id, caller: caller))
            }
            let unchanged = try await decodeConsents(
                connection.query(
                    """
                    SELECT id, purpose, status, granted_at FROM consents
                    WHERE subject_id = \(subject.id) AND purpose = ANY(\(existing)::text[])
                      AND status IN ('granted', 'pending') AND NOT (id = ANY(\(rows.map(\.id))::uuid[]))
                    """, logger: logger))
            for consent in unchanged {
                events.append(consentEvent("consent.reconfirmed", consent, notice: notice, collectionId: collectionId, method: optIn.method, subject: subject.id, caller: caller))
            }
            recorded += rows + unchanged
        }
        for consent in recorded where created.contains(consent.id) {
            let action = consent.status == "pending" ? "consent.pending" : "consent.granted"
            events.insert(
                consentEvent(action, consent, notice: notice, collectionId: collectionId, method: optIn.method, subject: subject.id, caller: caller),
                at: events.startIndex)
        }
        events = expiredEvents + events
        // Evidence, audit events, and the change position with its notification: one statement, one round trip.
        var binds = PostgresBindings()
        binds.append(recorded.map(\.id))
        binds.append(collectionId)
        binds.append(tenantId)
        let appendEvents = try AuditTrail.insertion(events, tenantId: tenantId, binds: &binds)
        binds.append(ConsentChange.channel)
        binds.append(ConsentChange.payloadPrefix(
            ConsentStateCache.Key(tenantId: tenantId, channel: optIn.subject.channel, blindIndex: blindIndex)))
        let (channel, prefix) = (binds.count - 1, binds.count)
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    WITH evidence AS (
                        INSERT INTO consent_evidence (consent_id, collection_id, tenant_id)
                        SELECT unnest($1::uuid[]), $2, $3
                    ), events AS (
                    \(appendEvents)
                    )
                    SELECT position, pg_notify($\(channel), $\(prefix) || position::text)::text
                    FROM nextval('consent_changes') AS position
                    """, binds: binds), logger: logger)
        guard let (position, _) = try await rows.decode((Int64, String).self).array().first else { throw NoPosition() }
        let order = Dictionary(optIn.purposes.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        recorded.sort { order[$0.purpose, default: 0] < order[$1.purpose, default: 0] }
        return OptInResult(consents: recorded, collectionId: collectionId, token: ConsistencyToken(position: position))
    }

    static func consentEvent(
        _ action: String, _ consent: RecordedConsent, notice: Notice, collectionId: UUID, method: CollectionMethod,
        subject: UUID, caller: CallerIdentity
    ) -> AuditEvent {
        AuditEvent(
            action: action, actor: caller.actor, subjectRef: subject,
            data: [
                "consentId": .id(consent.id), "purpose": .string(consent.purpose), "channel": .string(notice.channel.rawValue),
                "noticeId": .id(notice.id), "collectionId": .id(collectionId), "method": .string(method.rawValue),
            ])
    }

    /// Withdraws the subject's active consents on the channel: the purposes named, or all of them. A withdrawal of
    /// everything for someone the tenant does not know (never met, or erased) is an objection to being messaged:
    /// with `suppression` on it is kept as a suppression entry, so an old list cannot bring the person back.
    public static func revoke(
        subject blindIndex: [UInt8], identifier: SubjectIdentifier? = nil, channel: MessageChannel, purposes: [String]?,
        source: RevocationSource, tenantId: UUID, caller: CallerIdentity, keyring: TenantKeyring? = nil,
        suppression: Bool = false, on connection: PostgresConnection, logger: Logger
    ) async throws -> RevocationResult {
        if let purposes {
            let unknown = try await PurposeStore.unknown(purposes, on: connection, logger: logger)
            guard unknown.isEmpty else { throw ConsentWriteError.unknownPurposes(unknown) }
        }
        var revoked: [RevokedConsent] = []
        if let subjectId = try await SubjectDirectory.find(
            blindIndex: blindIndex, channel: channel, on: connection, logger: logger)
        {
            revoked = try await withdraw(
                subjectId: subjectId, channel: channel, purposes: purposes, source: source, tenantId: tenantId,
                caller: caller, on: connection, logger: logger)
        } else if suppression, purposes == nil, let identifier, let keyring {
            try await SuppressionList.add(
                identifier, reason: .objected, tenantId: tenantId, actor: caller.actor, keyring: keyring,
                on: connection, logger: logger)
        }
        return RevocationResult(
            revoked: revoked,
            token: try await changePosition(
                tenantId: tenantId, channel: channel, blindIndex: blindIndex, on: connection, logger: logger))
    }

    static func withdraw(
        subjectId: UUID, channel: MessageChannel, purposes: [String]?, source: RevocationSource, tenantId: UUID,
        caller: CallerIdentity, on connection: PostgresConnection, logger: Logger
    ) async throws -> [RevokedConsent] {
        let everything = purposes == nil
        let rows = try await connection.query(
            """
            UPDATE consents SET status = 'withdrawn', revoked_at = now(), revoke_source = \(source.rawValue),
                   revoked_by = \(caller.keyId)
            WHERE subject_id = \(subjectId) AND status IN ('granted', 'pending')
              AND (\(everything) OR purpose = ANY(\(purposes ?? [])::text[]))
            RETURNING id, purpose, revoked_at
            """, logger: logger)
        var revoked: [RevokedConsent] = []
        for try await (id, purpose, revokedAt) in rows.decode((UUID, String, Date).self) {
            revoked.append(RevokedConsent(id: id, purpose: purpose, revokedAt: revokedAt))
        }
        revoked.sort { ($0.purpose, $0.id.uuidString) < ($1.purpose, $1.id.uuidString) }
        try await AuditTrail.append(
            revoked.map { consent in
                AuditEvent(
                    action: "consent.withdrawn", actor: caller.actor, subjectRef: subjectId,
                    data: [
                        "consentId": .id(consent.id), "purpose": .string(consent.purpose),
                        "channel": .string(channel.rawValue), "source": .string(source.rawValue),
                    ])
            }, tenantId: tenantId, on: connection, logger: logger)
        return revoked
    }

    /// An inbound message: opens or extends the 24-hour window from its time (never moves it back), and a stop
    /// keyword withdraws every purpose on the channel. The text is kept only as ciphertext.
    public static func recordInteraction(
        from subject: SubjectIdentifier, blindIndex: [UInt8], occurredAt: Date, text: String?, tenantId: UUID,
        caller: CallerIdentity, keyring: TenantKeyring, interactionId id: UUID = UUID(),
        pendingLifetime: TimeInterval = CollectionPolicy.default.pendingConsentLifetime,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> InteractionResult {
        let handle = try await SubjectDirectory.findOrCreate(
            subject, blindIndex: blindIndex, tenantId: tenantId, keyring: keyring, on: connection, logger: logger)
        let isStop = text.map(ReplyKeywords.isStop) ?? false
        let isConfirmation = !isStop && (text.map(ReplyKeywords.isConfirmation) ?? false)
        let sealedText = text.map { ByteBuffer(bytes: handle.seal(Array($0.utf8), context: "interaction:\(id.lowercased)")) }
        try await connection.query(
            """
            INSERT INTO interactions (id, tenant_id, subject_id, direction, kind, occurred_at, received_at, recorded_by,
                                      text_ciphertext)
            VALUES (\(id), \(tenantId), \(handle.id), 'inbound', \(isStop ? "stop_keyword" : "message"), \(occurredAt),
                    now(), \(caller.keyId), \(sealedText))
            """, logger: logger)
        let windows = try await connection.query(
            """
            UPDATE subjects SET last_inbound_at = greatest(last_inbound_at, \(occurredAt))
            WHERE id = \(handle.id) RETURNING last_inbound_at
            """, logger: logger)
        let lastInbound = try await windows.decode(Date.self).array().first
        try await AuditTrail.append(
            [AuditEvent(
                action: "interaction.received", actor: caller.actor, subjectRef: handle.id,
                data: [
                    "interactionId": .id(id), "channel": .string(subject.channel.rawValue),
                    "direction": .string("inbound"), "stopKeyword": .bool(isStop),
                ])], tenantId: tenantId, on: connection, logger: logger)
        let revoked =
            isStop
            ? try await withdraw(
                subjectId: handle.id, channel: subject.channel, purposes: nil, source: .stopKeyword,
                tenantId: tenantId, caller: caller, on: connection, logger: logger)
            : []
        let confirmed =
            isConfirmation
            ? try await confirmPending(
                subjectId: handle.id, consentId: nil, channel: subject.channel, via: .reply(interactionId: id),
                lifetime: pendingLifetime, caller: caller, tenantId: tenantId, on: connection, logger: logger)
            : []
        return InteractionResult(
            interactionId: id, window: ServiceWindow(lastInboundAt: lastInbound), revoked: revoked, confirmed: confirmed,
            token: try await changePosition(
                tenantId: tenantId, channel: subject.channel, blindIndex: blindIndex, on: connection, logger: logger))
    }

    /// How a double opt-in was confirmed: the audit event says which.
    public enum Confirmation: Sendable, Equatable {
        case api
        case reply(interactionId: UUID)
    }

    /// Confirms the subject's pending consents on the channel that are younger than `lifetime`: one of them
    /// (`consentId`) or all of them (a "YES" reply confirms what the person was asked).
    static func confirmPending(
        subjectId: UUID, consentId: UUID?, channel: MessageChannel, via: Confirmation, lifetime: TimeInterval,
        caller: CallerIdentity, tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> [RecordedConsent] {
        let confirmed = try await decodeConsents(
            connection.query(
                """
                UPDATE consents SET status = 'granted', granted_at = now()
                WHERE subject_id = \(subjectId) AND status = 'pending'
                  AND (\(consentId)::uuid IS NULL OR id = \(consentId))
                  AND created_at > now() - make_interval(secs => \(lifetime))
                RETURNING id, purpose, status, granted_at
                """, logger: logger)
        ).sorted { ($0.purpose, $0.id.uuidString) < ($1.purpose, $1.id.uuidString) }
        var data: [String: AuditValue] = ["channel": .string(channel.rawValue)]
        switch via {
        case .api: data["via"] = .string("api")
        case .reply(let interactionId):
            data["via"] = .string("reply")
            data["interactionId"] = .id(interactionId)
        }
        try await AuditTrail.append(
            confirmed.map { consent in
                var fields = data
                fields["consentId"] = .id(consent.id)
                fields["purpose"] = .string(consent.purpose)
                return AuditEvent(action: "consent.confirmed", actor: caller.actor, subjectRef: subjectId, data: fields)
            }, tenantId: tenantId, on: connection, logger: logger)
        return confirmed
    }

    public enum ConfirmOutcome: Sendable, Equatable {
        case confirmed(RecordedConsent, ConsistencyToken, blindIndex: [UInt8], channel: MessageChannel)
        /// Already granted: confirming again changes nothing.
        case alreadyGranted(RecordedConsent)
        case withdrawn
        case expired
        case notFound
    }

    /// `POST /v1/consents/{id}/confirm`: the shop confirmed the person's double opt-in by its own means (a link
    /// in an e-mail, a code typed back).
    public static func confirm(
        consentId: UUID, lifetime: TimeInterval, tenantId: UUID, caller: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> ConfirmOutcome {
        let rows = try await connection.query(
            """
            SELECT c.subject_id, c.channel, c.purpose, c.status, c.granted_at,
                   c.created_at <= now() - make_interval(secs => \(lifetime)), s.blind_index
            FROM consents c JOIN subjects s ON s.id = c.subject_id
            WHERE c.id = \(consentId) AND s.erased_at IS NULL
            FOR UPDATE OF c
            """, logger: logger)
        guard
            let (subjectId, channelText, purpose, status, grantedAt, stale, blindIndex) = try await rows.decode(
                (UUID, String, String, String, Date?, Bool, ByteBuffer?).self
            ).array().first, let channel = MessageChannel(rawValue: channelText), let blindIndex
        else { return .notFound }
        switch status {
        case "granted":
            return .alreadyGranted(RecordedConsent(id: consentId, purpose: purpose, status: status, grantedAt: grantedAt))
        case "withdrawn": return .withdrawn
        case "expired": return .expired
        default:
            if stale { return .expired }
        }
        let index = Array(blindIndex.readableBytesView)
        guard
            let consent = try await confirmPending(
                subjectId: subjectId, consentId: consentId, channel: channel, via: .api, lifetime: lifetime,
                caller: caller, tenantId: tenantId, on: connection, logger: logger
            ).first
        else { return .expired }
        let token = try await changePosition(tenantId: tenantId, channel: channel, blindIndex: index, on: connection, logger: logger)
        return .confirmed(consent, token, blindIndex: index, channel: channel)
    }

    /// Marks the subject's pending consents for `purposes` that are at least `lifetime` old as expired, with an
    /// audit event each.
    static func expire(
        subjectId: UUID, purposes: [String], olderThan lifetime: TimeInterval, channel: MessageChannel, actor: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> (purposes: [String], events: [AuditEvent]) {
        let rows = try await connection.query(
            """
            UPDATE consents SET status = 'expired', expired_at = now()
            WHERE subject_id = \(subjectId) AND purpose = ANY(\(purposes)::text[]) AND status = 'pending'
              AND created_at <= now() - make_interval(secs => \(lifetime))
            RETURNING id, purpose
            """, logger: logger)
        var expired: [String] = []
        var events: [AuditEvent] = []
        for try await (id, purpose) in rows.decode((UUID, String).self) {
            expired.append(purpose)
            events.append(AuditEvent(
                action: "consent.expired", actor: actor, subjectRef: subjectId,
                data: ["consentId": .id(id), "purpose": .string(purpose), "channel": .string(channel.rawValue)]))
        }
        return (expired, events)
    }

    /// The change's position, announced to every instance's check cache when the transaction commits. One round
    /// trip: the position is taken and the notification queued by the same statement.
    static func changePosition(
        tenantId: UUID, channel: MessageChannel, blindIndex: [UInt8], on connection: PostgresConnection, logger: Logger
    ) async throws -> ConsistencyToken {
        let prefix = ConsentChange.payloadPrefix(
            ConsentStateCache.Key(tenantId: tenantId, channel: channel, blindIndex: blindIndex))
        let rows = try await connection.query(
            """
            SELECT position, pg_notify(\(ConsentChange.channel), \(prefix) || position::text)::text
            FROM nextval('consent_changes') AS position
            """, logger: logger)
        guard let (position, _) = try await rows.decode((Int64, String).self).array().first else { throw NoPosition() }
        return ConsistencyToken(position: position)
    }

    /// `nextval` answered no row: the write must not be acknowledged without its token.
    struct NoPosition: Error {}

    static func decodeConsents(_ rows: PostgresRowSequence) async throws -> [RecordedConsent] {
        var consents: [RecordedConsent] = []
        for try await (id, purpose, status, grantedAt) in rows.decode((UUID, String, String, Date?).self) {
            consents.append(RecordedConsent(id: id, purpose: purpose, status: status, grantedAt: grantedAt))
        }
        return consents
    }
}
