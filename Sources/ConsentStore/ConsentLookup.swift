import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// What a check needs to know about one subject: the consent that decides for the purpose, and the window.
public struct SubjectConsentState: Sendable, Equatable {
    public let subjectId: UUID
    public let consent: ConsentState
    public let window: ServiceWindow
}

public enum ConsentLookupError: Error, Equatable {
    case unknownPurpose(String)
}

/// The read side of checks: one round trip for one subject or ten thousand.
public struct ConsentLookup: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring

    public init(client: PostgresClient, keyring: TenantKeyring) {
        self.client = client
        self.keyring = keyring
    }

    /// The state of each subject the tenant knows, keyed by position in `subjects`; unknown subjects are absent.
    /// Duplicates are looked up once and answered for each position.
    public func states(
        of subjects: [SubjectIdentifier], channel: MessageChannel, purpose: String, tenantId: UUID, logger: Logger
    ) async throws -> [SubjectConsentState?] {
        let key = try await keyring.blindIndexKey(tenantId: tenantId, client: client, logger: logger)
        let indexes = subjects.map { BlindIndex.compute($0, key: key) }
        let distinct = Array(Set(indexes))
        let rows: PostgresRowSequence
        do {
            rows = try await client.query(
                """
                SELECT blind_index, subject_id, last_inbound_at, consent_id, status, granted_at, revoked_at
                FROM app_consent_states(\(tenantId), \(channel.rawValue), \(purpose),
                                        \(distinct.map { ByteBuffer(bytes: $0) })::bytea[])
                """, logger: logger)
            var found: [[UInt8]: SubjectConsentState] = [:]
            for try await (index, subjectId, lastInbound, consentId, status, grantedAt, revokedAt) in rows.decode(
                (ByteBuffer, UUID, Date?, UUID?, String?, Date?, Date?).self)
            {
                found[Array(index.readableBytesView)] = SubjectConsentState(
                    subjectId: subjectId,
                    consent: Self.consentState(id: consentId, status: status, grantedAt: grantedAt, revokedAt: revokedAt),
                    window: ServiceWindow(lastInboundAt: lastInbound))
            }
            return indexes.map { found[$0] }
        } catch where DatabaseErrors.sqlState(error) == "CL001" {
            throw ConsentLookupError.unknownPurpose(purpose)
        }
    }

    static func consentState(id: UUID?, status: String?, grantedAt: Date?, revokedAt: Date?) -> ConsentState {
        guard let id else { return .none }
        switch status {
        case "granted": return grantedAt.map { .granted(id: id, grantedAt: $0) } ?? .none
        case "pending": return .pending(id: id)
        case "withdrawn": return revokedAt.map { .withdrawn(id: id, revokedAt: $0) } ?? .none
        default: return .none
        }
    }
}
