import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// A subject as a write transaction holds it: its id and its unwrapped data key.
struct SubjectHandle {
    let id: UUID
    let dataKey: SymmetricKey

    func seal(_ plaintext: some DataProtocol, context: String) -> [UInt8] {
        FieldCipher.seal(plaintext, key: dataKey, context: "\(id.lowercased):\(context)")
    }

    func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        try FieldCipher.open(sealed, key: dataKey, context: "\(id.lowercased):\(context)")
    }
}

/// Finds subjects by blind index and creates them as the data-protection model stores them: the identifier is
/// ciphertext under the subject's own data key, which the master key wraps.
enum SubjectDirectory {
    static func find(blindIndex: [UInt8], channel: MessageChannel, on connection: PostgresConnection, logger: Logger)
        async throws -> UUID?
    {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT id FROM subjects
            WHERE channel = \(channel.rawValue) AND blind_index = \(ByteBuffer(bytes: blindIndex)) AND erased_at IS NULL
            """, logger: logger)
        return try await rows.decode(UUID.self).array().first
    }

    /// A concurrent first write for the same person waits on the unique blind index and then uses the row the
    /// other transaction made, so one person is one subject.
    ///
    /// An existing subject is taken with FOR KEY SHARE, which only an erasure (FOR UPDATE) conflicts with: a write
    /// that found the person finishes before an erasure can start, and a write that meets an erasure in progress
    /// waits for it, then no longer finds the person and makes a new subject. No write lands half on an erased one.
    static func findOrCreate(
        _ subject: SubjectIdentifier, blindIndex: [UInt8], tenantId: UUID, keyring: TenantKeyring,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> SubjectHandle {
        // Each round that finds nothing saw an erasure commit in between; a third in a row means something is wrong.
        for _ in 0..<3 {
            let id = UUID()
            let (key, wrapped, masterKeyId) = keyring.newSubjectKey(subjectId: id)
            let handle = SubjectHandle(id: id, dataKey: key)
            let identifier = handle.seal(Array(subject.value.utf8), context: "identifier")
            // The subject and its wrapped key in one statement (one round trip); the key's foreign key is checked
            // at the statement's end, when the subject row exists.
            let inserted = try await connection.closeSafeQuery(
                """
                WITH subject AS (
                    INSERT INTO subjects (id, tenant_id, channel, blind_index, identifier_ciphertext)
                    VALUES (\(id), \(tenantId), \(subject.channel.rawValue), \(ByteBuffer(bytes: blindIndex)),
                            \(ByteBuffer(bytes: identifier)))
                    ON CONFLICT (tenant_id, channel, blind_index) DO NOTHING RETURNING id
                ), key AS (
                    INSERT INTO subject_keys (subject_id, tenant_id, wrapped_key, master_key_id)
                    SELECT id, \(tenantId), \(ByteBuffer(bytes: wrapped)), \(ByteBuffer(bytes: masterKeyId)) FROM subject
                )
                SELECT id FROM subject
                """, logger: logger
            ).collect()
            if !inserted.isEmpty { return handle }
            let rows = try await connection.closeSafeQuery(
                """
                SELECT s.id FROM subjects s
                WHERE s.channel = \(subject.channel.rawValue) AND s.blind_index = \(ByteBuffer(bytes: blindIndex))
                  AND s.erased_at IS NULL
                FOR KEY SHARE
                """, logger: logger)
            if let existing = try await rows.decode(UUID.self).array().first {
                return try await open(existing, keyring: keyring, on: connection, logger: logger)
            }
        }
        throw TenantKeyring.KeyUnreadable(
            what: "subject's data key (the subject kept changing under a concurrent erasure)")
    }

    /// A subject about to be written by one statement that makes it if need be (`app_record_opt_in`): the one
    /// held now with its data key, or a new one whose identifier and wrapped key the statement stores.
    struct Resolved {
        struct New {
            let identifier: [UInt8]
            let wrappedKey: [UInt8]
            let masterKeyId: [UInt8]
        }
        let handle: SubjectHandle
        /// Nil when the subject exists.
        let new: New?
    }

    /// One statement (`app_subject_key`), which names its tenant itself.
    static func resolve(
        _ subject: SubjectIdentifier, blindIndex: [UInt8], tenantId: UUID, keyring: TenantKeyring,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Resolved {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT subject_id, wrapped_key, master_key_id
            FROM app_subject_key(\(tenantId), \(subject.channel.rawValue), \(ByteBuffer(bytes: blindIndex)))
            """, logger: logger)
        if let (id, wrapped, wrappedBy) = try await rows.decode((UUID, ByteBuffer, ByteBuffer?).self).array().first {
            let dataKey = try keyring.unwrapSubjectKey(
                Array(wrapped.readableBytesView), wrappedBy: wrappedBy.map { Array($0.readableBytesView) },
                subjectId: id)
            return Resolved(handle: SubjectHandle(id: id, dataKey: dataKey), new: nil)
        }
        let id = UUID()
        let (key, wrapped, masterKeyId) = keyring.newSubjectKey(subjectId: id)
        let handle = SubjectHandle(id: id, dataKey: key)
        return Resolved(
            handle: handle,
            new: Resolved.New(
                identifier: handle.seal(Array(subject.value.utf8), context: "identifier"), wrappedKey: wrapped,
                masterKeyId: masterKeyId))
    }

    /// The subject's data key, unwrapped; a subject whose key was destroyed by erasure has none.
    static func open(_ subjectId: UUID, keyring: TenantKeyring, on connection: PostgresConnection, logger: Logger)
        async throws -> SubjectHandle
    {
        let rows = try await connection.closeSafeQuery(
            "SELECT wrapped_key, master_key_id FROM subject_keys WHERE subject_id = \(subjectId)", logger: logger)
        for try await (wrapped, wrappedBy) in rows.decode((ByteBuffer, ByteBuffer?).self) {
            let dataKey = try keyring.unwrapSubjectKey(
                Array(wrapped.readableBytesView), wrappedBy: wrappedBy.map { Array($0.readableBytesView) },
                subjectId: subjectId)
            return SubjectHandle(id: subjectId, dataKey: dataKey)
        }
        throw TenantKeyring.KeyUnreadable(what: "subject's data key (missing)")
    }

    /// The identifier a held subject was recorded under, decrypted; nil once erased.
    static func identifier(
        of subjectId: UUID, keyring: TenantKeyring, on connection: PostgresConnection, logger: Logger
    ) async throws -> SubjectIdentifier? {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT channel, identifier_ciphertext FROM subjects WHERE id = \(subjectId) AND erased_at IS NULL
            """, logger: logger)
        guard
            let (channelText, ciphertext) = try await rows.decode((String, ByteBuffer?).self).array().first,
            let channel = MessageChannel(rawValue: channelText), let ciphertext
        else { return nil }
        let handle = try await open(subjectId, keyring: keyring, on: connection, logger: logger)
        let text = String(
            decoding: try handle.open(Array(ciphertext.readableBytesView), context: "identifier"), as: UTF8.self)
        return try SubjectIdentifier(text, channel: channel)
    }
}
