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
}

/// Finds subjects by blind index and creates them as the data-protection model stores them: the identifier is
/// ciphertext under the subject's own data key, which the master key wraps.
enum SubjectDirectory {
    static func find(blindIndex: [UInt8], channel: MessageChannel, on connection: PostgresConnection, logger: Logger)
        async throws -> UUID?
    {
        let rows = try await connection.query(
            """
            SELECT id FROM subjects
            WHERE channel = \(channel.rawValue) AND blind_index = \(ByteBuffer(bytes: blindIndex)) AND erased_at IS NULL
            """, logger: logger)
        return try await rows.decode(UUID.self).array().first
    }

    /// A concurrent first write for the same person waits on the unique blind index and then uses the row the
    /// other transaction made, so one person is one subject.
    static func findOrCreate(
        _ subject: SubjectIdentifier, blindIndex: [UInt8], tenantId: UUID, keyring: TenantKeyring,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> SubjectHandle {
        let id = UUID()
        let (key, wrapped) = keyring.newSubjectKey(subjectId: id)
        let handle = SubjectHandle(id: id, dataKey: key)
        let identifier = handle.seal(Array(subject.value.utf8), context: "identifier")
        let inserted = try await connection.query(
            """
            INSERT INTO subjects (id, tenant_id, channel, blind_index, identifier_ciphertext)
            VALUES (\(id), \(tenantId), \(subject.channel.rawValue), \(ByteBuffer(bytes: blindIndex)),
                    \(ByteBuffer(bytes: identifier)))
            ON CONFLICT (tenant_id, channel, blind_index) DO NOTHING RETURNING id
            """, logger: logger
        ).collect()
        if !inserted.isEmpty {
            try await connection.query(
                """
                INSERT INTO subject_keys (subject_id, tenant_id, wrapped_key)
                VALUES (\(id), \(tenantId), \(ByteBuffer(bytes: wrapped)))
                """, logger: logger)
            return handle
        }
        let rows = try await connection.query(
            """
            SELECT s.id, k.wrapped_key FROM subjects s JOIN subject_keys k ON k.subject_id = s.id
            WHERE s.channel = \(subject.channel.rawValue) AND s.blind_index = \(ByteBuffer(bytes: blindIndex))
            """, logger: logger)
        for try await (existing, wrappedKey) in rows.decode((UUID, ByteBuffer).self) {
            let dataKey = try keyring.unwrapSubjectKey(Array(wrappedKey.readableBytesView), subjectId: existing)
            return SubjectHandle(id: existing, dataKey: dataKey)
        }
        throw TenantKeyring.KeyUnreadable(what: "subject's data key (missing)")
    }
}
