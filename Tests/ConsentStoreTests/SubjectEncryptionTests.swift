import ConsentCore
import ConsentTesting
import Crypto
import Foundation
import PostgresNIO
import Testing

@testable import ConsentStore

/// What is stored for a subject opens again under the master key, and only under it.
@Suite struct SubjectEncryptionTests {
    @Test func storedCiphertextOpensUnderTheMasterKeyOnly() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let master = SecretBytes.random32()
        let keyring = TenantKeyring(masterKey: master)
        let (tenant, key) = try await database.withClient(\.owner) { client throws in
            let tenant = try await TenantStore(client: client).create(TenantName("acme")!, logger: logger)
            let key = try await APIKeyStore(client: client).create(
                tenantId: tenant.id, scopes: [.consentWrite, .admin], label: "", logger: logger)
            return (tenant, key)
        }
        let caller = CallerIdentity(keyId: key.record.id, tenantId: tenant.id, scopes: [.consentWrite, .admin])
        let subject = try SubjectIdentifier("+39 333 123 4567", channel: .whatsapp)
        let provenance = Provenance(pageUrl: "https://shop.example/c", userAgent: "UA/1", ipAddress: "203.0.113.7")

        let subjectId = try await database.withClient(\.app) { client throws in
            let notice = try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await NoticeStore.create(
                    tenantId: tenant.id, channel: .whatsapp, language: "en", text: "Updates?",
                    purposes: ["shipping_update"],
                    actor: caller, on: connection, logger: logger)
            }
            let index = try await keyring.blindIndex(subject, tenantId: tenant.id, client: client, logger: logger)
            // A second keyring on the same master key (another instance) agrees on the tenant's key.
            let other = try await TenantKeyring(masterKey: master).blindIndex(
                subject, tenantId: tenant.id, client: client, logger: logger)
            #expect(index == other)
            _ = try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await ConsentLedger.recordOptIn(
                    OptIn(
                        subject: subject, purposes: ["shipping_update"], noticeId: notice.id, method: .checkbox,
                        collectedAt: Date(), provenance: provenance),
                    blindIndex: index, tenantId: tenant.id, caller: caller, keyring: keyring, on: connection,
                    logger: logger)
            }
            // Another master key cannot read the tenant's blind-index key.
            await #expect(throws: TenantKeyring.KeyUnreadable.self) {
                _ = try await TenantKeyring(masterKey: .random32()).blindIndexKey(
                    tenantId: tenant.id, client: client, logger: logger)
            }
            return try #require(
                try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await SubjectDirectory.find(
                        blindIndex: index, channel: .whatsapp, on: connection, logger: logger)
                })
        }

        let (identifier, wrapped, sealedProvenance, collectionId) = try await database.withClient(\.superuser) {
            client throws in
            let row = try await client.query(
                """
                SELECT s.identifier_ciphertext, k.wrapped_key, c.provenance_ciphertext, c.id
                FROM subjects s JOIN subject_keys k ON k.subject_id = s.id JOIN collections c ON c.subject_id = s.id
                WHERE s.id = \(subjectId)
                """
            ).collect().first!
            let (a, b, c, d) = try row.decode((ByteBuffer, ByteBuffer, ByteBuffer, UUID).self)
            return (Array(a.readableBytesView), Array(b.readableBytesView), Array(c.readableBytesView), d)
        }
        let dataKey = try keyring.unwrapSubjectKey(wrapped, subjectId: subjectId)
        let handle = SubjectHandle(id: subjectId, dataKey: dataKey)
        let opened = try FieldCipher.open(identifier, key: dataKey, context: "\(subjectId.lowercased):identifier")
        #expect(String(decoding: opened, as: UTF8.self) == "+393331234567")
        let openedProvenance = try FieldCipher.open(
            sealedProvenance, key: handle.dataKey,
            context: "\(subjectId.lowercased):collection:\(collectionId.lowercased)")
        #expect(try JSONDecoder().decode(Provenance.self, from: Data(openedProvenance)) == provenance)
        #expect(throws: (any Error).self) {
            try TenantKeyring(masterKey: .random32()).unwrapSubjectKey(wrapped, subjectId: subjectId)
        }
    }
}
