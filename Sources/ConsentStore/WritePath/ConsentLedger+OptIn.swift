import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// Records an opt-in: the subject's data key is read (or a new subject's made), the provenance sealed under it,
    /// and then `app_record_opt_in` checks the notice, takes or makes the subject, inserts the collection and the
    /// consents, reconciles purposes already active, and writes the evidence, audit events and change position,
    /// all in one statement (its phases are described in sql/migrations/0007 and 0012). For each purpose the latest
    /// event by its own time wins: an opt-in collected before a stop that covers it is kept as `superseded`. With
    /// `suppression` on, an `import` for a purpose in the scope of the person's suppression entry is `suppressed`
    /// (refused outright when nothing else would be recorded for someone the tenant does not hold); an opt-in the
    /// person gave themselves (checkbox, double opt-in, verbal, api) after their objection is a fresh consent.
    public static func recordOptIn(
        _ optIn: OptIn, blindIndex: [UInt8], tenantId: UUID, caller: CallerIdentity, keyring: TenantKeyring,
        suppression: Bool = true, pendingLifetime: TimeInterval = CollectionPolicy.default.pendingConsentLifetime,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> OptInResult {
        let suppressionHash =
            suppression
            ? ByteBuffer(
                bytes: try await keyring.suppressionHash(
                    optIn.subject, tenantId: tenantId, on: connection, logger: logger))
            : nil
        let provenance = try JSONEncoder().encode(optIn.provenance)
        let status = optIn.method.recordedStatus
        let key = ConsentStateCache.Key(tenantId: tenantId, channel: optIn.subject.channel, blindIndex: blindIndex)
        // Each round that writes nothing saw the subject made or erased by another write in between; a third in a
        // row means something is wrong.
        for _ in 0..<3 {
            let subject = try await SubjectDirectory.resolve(
                optIn.subject, blindIndex: blindIndex, tenantId: tenantId, keyring: keyring, on: connection,
                logger: logger)
            let collectionId = UUID()
            let sealedProvenance = subject.handle.seal(provenance, context: "collection:\(collectionId.lowercased)")
            let rows = try await ConsentWriteError.mapping {
                try await connection.closeSafeQuery(
                    """
                    SELECT consent_id, purpose, status, granted_at, change_position
                    FROM app_record_opt_in(
                        \(tenantId), \(optIn.subject.channel.rawValue), \(ByteBuffer(bytes: blindIndex)), \(subject.handle.id),
                        \(subject.new.map { ByteBuffer(bytes: $0.identifier) }), \(subject.new.map { ByteBuffer(bytes: $0.wrappedKey) }),
                        \(subject.new.map { ByteBuffer(bytes: $0.masterKeyId) }), \(suppressionHash), \(optIn.noticeId),
                        \(optIn.purposes)::text[], \(optIn.purposes.map { _ in UUID() })::uuid[], \(status.rawValue),
                        \(optIn.method.rawValue), \(optIn.collectedAt), \(collectionId), \(caller.keyId),
                        \(ByteBuffer(bytes: sealedProvenance)), \(caller.actor), \(pendingLifetime),
                        \(ConsentChange.channel), \(ConsentChange.payloadPrefix(key)))
                    """, logger: logger
                ).decode((UUID?, String, String, Date?, Int64).self).array()
            }
            guard let position = rows.first?.4 else { continue }
            var outcomes: [OptInPurposeOutcome] = []
            for (id, purpose, status, grantedAt, _) in rows {
                if let id {
                    guard let status = ConsentStatus(rawValue: status) else { throw UnknownStatus(text: status) }
                    outcomes.append(
                        .recorded(RecordedConsent(id: id, purpose: purpose, status: status, grantedAt: grantedAt)))
                } else {
                    outcomes.append(.suppressed(purpose: purpose))
                }
            }
            return OptInResult(
                outcomes: outcomes, collectionId: collectionId, change: ConsentChange(key: key, position: position))
        }
        throw TenantKeyring.KeyUnreadable(
            what: "subject's data key (the subject kept changing under concurrent writes)")
    }
}
