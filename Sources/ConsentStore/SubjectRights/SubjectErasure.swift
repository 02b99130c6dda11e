import ConsentCore
import Foundation
import Logging
import PostgresNIO

public struct ErasureResult: ConsentStateChanging, Equatable {
    /// The subject erased, or nil when the tenant held nobody by that identifier (never met, or erased before).
    public let subjectRef: UUID?
    public let erasedAt: Date
    /// Whether this erasure ran now, rather than finding the subject already erased.
    public let erasedNow: Bool
    public let suppressed: Bool
    /// The change's position and the subject's former cache key, when this erasure ran now.
    public let change: ConsentChange?

    public var changes: [ConsentChange] { change.map { [$0] } ?? [] }
}

/// Art. 17 by crypto-shredding, in the caller's transaction: the subject's data key and blind index are destroyed,
/// its remaining ciphertexts cleared, its active consents withdrawn, and one `subject.erased` event appended that
/// carries counts and ids only. What stays is what proves the controller's conduct without saying who: consent ids,
/// purposes, times and the audit log, all under an opaque reference that nothing maps back to a person.
public enum SubjectErasure {
    /// Erases whoever the blind index finds. Nobody found is success too: nothing readable is held about them.
    public static func erase(
        _ identifier: SubjectIdentifier, blindIndex: [UInt8], objection: Bool, tenantId: UUID, caller: CallerIdentity,
        keyring: TenantKeyring, suppression: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> ErasureResult {
        let found = try await connection.closeSafeQuery(
            """
            SELECT id FROM subjects
            WHERE channel = \(identifier.channel.rawValue) AND blind_index = \(ByteBuffer(bytes: blindIndex))
              AND erased_at IS NULL
            FOR UPDATE
            """, logger: logger
        ).decode(UUID.self).array().first
        guard let subjectId = found else {
            // Nobody is held, but a record may still name them (a write that kept nothing else about them).
            try await forgetIdempotentRequests(naming: blindIndex, on: connection, logger: logger)
            // An objection about someone not (or no longer) held is still an objection worth keeping.
            let suppressed =
                suppression && objection
                ? try await SuppressionList.add(
                    identifier, reason: .objected, tenantId: tenantId, actor: caller.actor, keyring: keyring,
                    on: connection, logger: logger)
                : false
            return ErasureResult(
                subjectRef: nil, erasedAt: Date(), erasedNow: false, suppressed: suppressed, change: nil)
        }
        return try await erase(
            subjectId: subjectId, objection: objection, requestId: nil, tenantId: tenantId, caller: caller,
            keyring: keyring, suppression: suppression, on: connection, logger: logger)
    }

    /// Erases one subject by reference (an erasure request). Idempotent: an erased subject is reported as such.
    public static func erase(
        subjectId: UUID, objection: Bool, requestId: UUID?, tenantId: UUID, caller: CallerIdentity,
        keyring: TenantKeyring, suppression: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> ErasureResult {
        // FOR UPDATE waits for writes that hold the subject (FOR KEY SHARE, see SubjectDirectory) and makes later
        // ones wait for this transaction, so the person's data is erased as a whole or not at all.
        let rows = try await connection.closeSafeQuery(
            """
            SELECT channel, identifier_ciphertext, erased_at, blind_index FROM subjects WHERE id = \(subjectId) FOR UPDATE
            """, logger: logger)
        guard
            let (channelText, identifierCiphertext, erasedAt, blindIndex) = try await rows.decode(
                (String, ByteBuffer?, Date?, ByteBuffer?).self
            ).array().first,
            let channel = MessageChannel(rawValue: channelText)
        else { throw SubjectRightsError.subjectNotFound }
        if let erasedAt {
            return ErasureResult(
                subjectRef: subjectId, erasedAt: erasedAt, erasedNow: false, suppressed: false, change: nil)
        }

        let reason = try await suppressionReason(
            subjectId: subjectId, objection: objection, on: connection, logger: logger)
        var suppressed = false
        if suppression, let reason, let identifierCiphertext {
            let handle = try await SubjectDirectory.open(subjectId, keyring: keyring, on: connection, logger: logger)
            let text = String(
                decoding: try handle.open(Array(identifierCiphertext.readableBytesView), context: "identifier"),
                as: UTF8.self)
            let identifier = try SubjectIdentifier(text, channel: channel)
            suppressed = try await SuppressionList.add(
                identifier, reason: reason, tenantId: tenantId, actor: caller.actor, keyring: keyring,
                on: connection, logger: logger)
        }

        let withdrawn = try await ConsentLedger.withdraw(
            subjectId: subjectId, channel: channel, purposes: nil, source: .dpo, tenantId: tenantId, caller: caller,
            on: connection, logger: logger)
        // The reviews point at the messages deleted next; their resolutions stay in the audit log.
        try await connection.closeSafeQuery(
            "DELETE FROM opt_out_reviews WHERE subject_id = \(subjectId)", logger: logger)
        let interactions = try await connection.closeSafeQuery(
            "DELETE FROM interactions WHERE subject_id = \(subjectId) RETURNING id", logger: logger
        ).collect().count
        let collections = try await connection.closeSafeQuery(
            """
            UPDATE collections SET provenance_ciphertext = NULL
            WHERE subject_id = \(subjectId) AND provenance_ciphertext IS NOT NULL RETURNING id
            """, logger: logger
        ).collect().count
        if let blindIndex {
            try await forgetIdempotentRequests(
                naming: Array(blindIndex.readableBytesView), on: connection, logger: logger)
        }
        // An import's rows keep their line, outcome and leaf hash (the batch's other proofs need it), not the person.
        try await connection.closeSafeQuery(
            "UPDATE import_rows SET subject_id = NULL, row_key = NULL WHERE subject_id = \(subjectId)", logger: logger)
        try await connection.closeSafeQuery("DELETE FROM subject_keys WHERE subject_id = \(subjectId)", logger: logger)
        let erased =
            try await connection.closeSafeQuery(
                """
                UPDATE subjects SET blind_index = NULL, identifier_ciphertext = NULL, last_inbound_at = NULL,
                       entry_point_at = NULL, marketing_stopped_at = NULL,
                       erased_at = date_trunc('milliseconds', now())
                WHERE id = \(subjectId) RETURNING erased_at
                """, logger: logger
            ).decode(Date.self).array().first ?? Date()

        var data: [String: AuditValue] = [
            "channel": .string(channel.rawValue), "consentsWithdrawn": .int(Int64(withdrawn.count)),
            "interactionsDeleted": .int(Int64(interactions)), "provenanceCleared": .int(Int64(collections)),
            "suppressed": .bool(suppressed),
        ]
        if let requestId { data["requestId"] = .id(requestId) }
        try await AuditTrail.append(
            [AuditEvent(action: .subjectErased, actor: caller.actor, subjectRef: subjectId, data: data)],
            tenantId: tenantId, on: connection, logger: logger)
        var change: ConsentChange?
        if let blindIndex {
            change = try await ConsentLedger.changePosition(
                tenantId: tenantId, channel: channel, blindIndex: Array(blindIndex.readableBytesView), on: connection,
                logger: logger)
        }
        return ErasureResult(
            subjectRef: subjectId, erasedAt: erased, erasedNow: true, suppressed: suppressed, change: change)
    }

    /// The idempotency records of the person's requests: their stored responses name the person's consents, and
    /// their blind index is what ties them to the person (issue 21, finding 5).
    private static func forgetIdempotentRequests(
        naming blindIndex: [UInt8], on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.closeSafeQuery(
            "DELETE FROM idempotency_keys WHERE subject_refs @> ARRAY[\(ByteBuffer(bytes: blindIndex))]::bytea[]",
            logger: logger)
    }

    /// An objection (said now, or a STOP reply before) outranks a plain withdrawal; a person who never withdrew
    /// or objected leaves no entry.
    static func suppressionReason(subjectId: UUID, objection: Bool, on connection: PostgresConnection, logger: Logger)
        async throws -> SuppressionReason?
    {
        if objection { return .objected }
        let rows = try await connection.closeSafeQuery(
            """
            SELECT EXISTS (SELECT 1 FROM interactions WHERE subject_id = \(subjectId) AND kind = 'stop_keyword'),
                   EXISTS (SELECT 1 FROM consents WHERE subject_id = \(subjectId) AND status = 'withdrawn')
            """, logger: logger)
        guard let (stopped, withdrew) = try await rows.decode((Bool, Bool).self).array().first else { return nil }
        if stopped { return .objected }
        return withdrew ? .withdrawn : nil
    }
}

public enum SubjectRightsError: Error, Equatable {
    case subjectNotFound
    case requestNotFound
    case requestNotPending(SubjectRequestStatus)
}
