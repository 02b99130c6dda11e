import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// Records an opt-in in named phases: the notice is checked, the subject found or made, the collection and
    /// new consents inserted, purposes already active reconciled, and the evidence, audit events and change
    /// position written together. With `suppression` on, an opt-in by `import` for a person on the suppression
    /// list is refused; one the person gave themselves (checkbox, double opt-in, verbal, api) is a fresh consent.
    public static func recordOptIn(
        _ optIn: OptIn, blindIndex: [UInt8], tenantId: UUID, caller: CallerIdentity, keyring: TenantKeyring,
        suppression: Bool = true, pendingLifetime: TimeInterval = CollectionPolicy.default.pendingConsentLifetime,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> OptInResult {
        let notice = try await notice(covering: optIn, on: connection, logger: logger)
        let subject = try await SubjectDirectory.findOrCreate(
            optIn.subject, blindIndex: blindIndex, tenantId: tenantId, keyring: keyring, on: connection, logger: logger)
        // Checked after the subject is found or made: that statement waits out a concurrent erasure, so this one
        // sees the suppression entry that erasure committed.
        if suppression, optIn.method == .import,
            try await SuppressionList.contains(optIn.subject, tenantId: tenantId, keyring: keyring, on: connection, logger: logger)
        {
            throw ConsentWriteError.suppressed
        }
        let provenance = try JSONEncoder().encode(optIn.provenance)
        let collection = NewCollection(optIn: optIn, caller: caller) { id in
            subject.seal(provenance, context: "collection:\(id.lowercased)")
        }
        let status: ConsentStatus = optIn.method.startsPending ? .pending : .granted
        let target = ConsentTarget(tenantId: tenantId, subjectId: subject.id, notice: notice, status: status)
        var recorded = try await insertConsents(
            optIn.purposes, for: target, collection: collection, on: connection, logger: logger)
        var created = Set(recorded.map(\.id))
        let active = optIn.purposes.filter { purpose in !recorded.contains { $0.purpose == purpose } }
        let reconciled = try await reconcile(
            active, for: target, method: optIn.method, lifetime: pendingLifetime, actor: caller.actor, on: connection,
            logger: logger)
        recorded += reconciled.consents
        created.formUnion(reconciled.created)

        let describe = { (action: String, consent: RecordedConsent) in
            consentEvent(
                action, consent, notice: notice, collectionId: collection.id, method: optIn.method, subject: subject.id,
                caller: caller)
        }
        // Expiries first, then what this opt-in created, then what it confirmed or found already in force.
        let events =
            reconciled.expired
            + recorded.filter { created.contains($0.id) }.map { describe($0.status == .pending ? "consent.pending" : "consent.granted", $0) }
            + reconciled.confirmed.map { describe("consent.confirmed", $0) }
            + reconciled.unchanged.map { describe("consent.reconfirmed", $0) }
        let change = try await appendEvidence(
            consents: recorded.map(\.id), collectionId: collection.id, events: events,
            key: ConsentStateCache.Key(tenantId: tenantId, channel: optIn.subject.channel, blindIndex: blindIndex),
            on: connection, logger: logger)
        let order = Dictionary(optIn.purposes.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        recorded.sort { order[$0.purpose, default: 0] < order[$1.purpose, default: 0] }
        return OptInResult(consents: recorded, collectionId: collection.id, change: change)
    }

    /// The opt-in's notice, which must exist, be for the subject's channel and cover every purpose asked for.
    static func notice(covering optIn: OptIn, on connection: PostgresConnection, logger: Logger) async throws -> Notice {
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
        return notice
    }

    /// One act of collection: its notice, method and provenance (sealed under the subject's data key).
    struct NewCollection {
        let id: UUID
        let noticeId: UUID
        let method: CollectionMethod
        let collectedAt: Date
        let recordedBy: UUID?
        let sealedProvenance: [UInt8]

        init(optIn: OptIn, caller: CallerIdentity, sealedProvenance: (UUID) -> [UInt8]) {
            id = UUID()
            noticeId = optIn.noticeId
            method = optIn.method
            collectedAt = optIn.collectedAt
            recordedBy = caller.keyId
            self.sealedProvenance = sealedProvenance(id)
        }
    }

    /// Whose consents an opt-in writes, under which notice, and in which state new ones start.
    struct ConsentTarget {
        let tenantId: UUID
        let subjectId: UUID
        let notice: Notice
        let status: ConsentStatus
    }

    /// New consents for `purposes` that have none active (one already active is left alone and not returned),
    /// and the collection with them when one is given: one statement, one round trip.
    static func insertConsents(
        _ purposes: [String], for target: ConsentTarget, collection: NewCollection?, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [RecordedConsent] {
        let ids = purposes.map { _ in UUID() }
        return try await decodeConsents(
            connection.query(
                """
                WITH collection AS (
                    INSERT INTO collections (id, tenant_id, subject_id, notice_id, method, collected_at, received_at,
                                             recorded_by, provenance_ciphertext)
                    SELECT \(collection?.id), \(target.tenantId), \(target.subjectId), \(target.notice.id),
                           \(collection?.method.rawValue), \(collection?.collectedAt), now(), \(collection?.recordedBy),
                           \(collection.map { ByteBuffer(bytes: $0.sealedProvenance) })
                    WHERE \(collection?.id)::uuid IS NOT NULL
                )
                INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, notice_id, status, created_at, granted_at)
                SELECT w.id, \(target.tenantId), \(target.subjectId), \(target.notice.channel.rawValue), w.purpose,
                       \(target.notice.id), \(target.status.rawValue), now(),
                       CASE WHEN \(target.status.rawValue) = 'granted' THEN now() END
                FROM unnest(\(ids)::uuid[], \(purposes)::text[]) AS w(id, purpose)
                ON CONFLICT (subject_id, purpose) WHERE status IN ('granted', 'pending') DO NOTHING
                RETURNING id, purpose, status, granted_at
                """, logger: logger))
    }

    /// What an opt-in did to purposes that already had an active consent.
    struct Reconciliation {
        /// Pending consents that waited too long, expired here, and their events.
        var expired: [AuditEvent] = []
        /// Fresh consents that replace the expired ones.
        var created: [UUID] = []
        /// Pending consents that a direct opt-in confirmed.
        var confirmed: [RecordedConsent] = []
        /// Active consents that this collection becomes more evidence for.
        var unchanged: [RecordedConsent] = []

        var consents: [RecordedConsent] = []
    }

    /// Purposes already active keep their one consent, and this collection becomes more evidence for it. A direct
    /// opt-in also confirms one that was waiting for a double opt-in. One that waited too long expires here (if
    /// the expiry job has not reached it yet), and this opt-in starts a new consent in its place.
    static func reconcile(
        _ active: [String], for target: ConsentTarget, method: CollectionMethod, lifetime: TimeInterval, actor: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Reconciliation {
        var result = Reconciliation()
        guard !active.isEmpty else { return result }
        var remaining = active
        let stale = try await expire(
            subjectId: target.subjectId, purposes: active, olderThan: lifetime, channel: target.notice.channel,
            actor: actor, on: connection, logger: logger)
        result.expired = stale.events
        if !stale.purposes.isEmpty {
            let fresh = try await insertConsents(stale.purposes, for: target, collection: nil, on: connection, logger: logger)
            result.consents += fresh
            result.created = fresh.map(\.id)
            remaining.removeAll { stale.purposes.contains($0) }
        }
        guard !remaining.isEmpty else { return result }
        if !method.startsPending {
            result.confirmed = try await decodeConsents(
                connection.query(
                    """
                    UPDATE consents SET status = 'granted', granted_at = now()
                    WHERE subject_id = \(target.subjectId) AND purpose = ANY(\(remaining)::text[]) AND status = 'pending'
                    RETURNING id, purpose, status, granted_at
                    """, logger: logger))
        }
        result.unchanged = try await decodeConsents(
            connection.query(
                """
                SELECT id, purpose, status, granted_at FROM consents
                WHERE subject_id = \(target.subjectId) AND purpose = ANY(\(remaining)::text[])
                  AND status IN ('granted', 'pending') AND NOT (id = ANY(\(result.confirmed.map(\.id))::uuid[]))
                """, logger: logger))
        result.consents += result.confirmed + result.unchanged
        return result
    }

    /// The collection's evidence links, the audit events and the change position with its notification: one
    /// statement, one round trip.
    static func appendEvidence(
        consents: [UUID], collectionId: UUID, events: [AuditEvent], key: ConsentStateCache.Key,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> ConsentChange {
        var binds = PostgresBindings()
        binds.append(consents)
        binds.append(collectionId)
        binds.append(key.tenantId)
        let appendEvents = try AuditTrail.insertion(events, tenantId: key.tenantId, binds: &binds)
        binds.append(ConsentChange.channel)
        binds.append(ConsentChange.payloadPrefix(key))
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
        return ConsentChange(key: key, position: position)
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
}
