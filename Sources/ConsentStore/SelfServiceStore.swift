import ConsentCore
import Foundation
import Logging
import PostgresNIO

public enum SelfServiceError: Error, Equatable {
    /// Not a link this service signed for this tenant.
    case invalid
    /// Signed, but past its time, or the person was erased since.
    case expired
}

/// One consent as the person's own page lists it.
public struct SelfServiceConsent: Sendable, Equatable {
    public let id: UUID
    public let purpose: String
    public let purposeName: String
    public let status: ConsentStatus
    public let grantedAt: Date?
}

public struct SelfServicePage: Sendable, Equatable {
    public let link: SelfServiceLink
    public let channel: MessageChannel
    /// The language of the newest notice the person agreed to; nil when there is none.
    public let language: String?
    /// Granted and pending consents, in purpose order.
    public let consents: [SelfServiceConsent]
}

public struct SelfServiceWithdrawal: SubjectChangeOutcome {
    public let revoked: [RevokedConsent]
    public let change: ConsentChange
}

/// The person's own page, reached by a signed, expiring link that a shop sends them: it lists their consents on
/// one channel and withdraws any of them, recorded with source `self_service`.
public struct SelfServiceStore: Sendable {
    let database: ConsentDatabase
    var keyring: TenantKeyring { database.keyring }

    public init(database: ConsentDatabase) {
        self.database = database
    }

    public static let actor = "self_service"

    /// A link for a subject the tenant knows (nil otherwise: the caller answers 404, as an export does).
    public func issue(
        subject: SubjectIdentifier, lifetime: TimeInterval, caller: CallerIdentity, logger: Logger
    ) async throws -> (token: String, expiresAt: Date)? {
        try await database.read(caller.tenantId, logger: logger) { connection in
            let blindIndex = try await keyring.blindIndex(
                subject, on: connection, tenantId: caller.tenantId, logger: logger)
            guard
                let subjectId = try await SubjectDirectory.find(
                    blindIndex: blindIndex, channel: subject.channel, on: connection, logger: logger)
            else { return nil }
            let key = try await keyring.tenantKey(
                .selfServiceLink, tenantId: caller.tenantId, on: connection, logger: logger)
            let link = SelfServiceLink(
                tenantId: caller.tenantId, subjectId: subjectId, issuedBy: caller.keyId,
                expiresAt: Date().addingTimeInterval(lifetime))
            return (link.token(key: key), link.expiresAt)
        }
    }

    /// The link checked, and the subject's row (channel, blind index) if the person still exists.
    func verified(_ token: String, now: Date, on connection: PostgresConnection, tenantId: UUID, logger: Logger)
        async throws -> (SelfServiceLink, MessageChannel, [UInt8])
    {
        // No key, no link was ever signed for this tenant (or there is no such tenant): refused without a write.
        guard
            let key = try await keyring.existingTenantKey(
                .selfServiceLink, tenantId: tenantId, on: connection, logger: logger)
        else { throw SelfServiceError.invalid }
        let link: SelfServiceLink
        do {
            link = try SelfServiceLink.verify(token, key: key, now: now)
        } catch {
            throw error == .expired ? SelfServiceError.expired : SelfServiceError.invalid
        }
        let rows = try await connection.closeSafeQuery(
            "SELECT channel, blind_index FROM subjects WHERE id = \(link.subjectId) AND erased_at IS NULL",
            logger: logger)
        guard let (channelText, blindIndex) = try await rows.decode((String, ByteBuffer?).self).array().first,
            let channel = MessageChannel(rawValue: channelText), let blindIndex
        else { throw SelfServiceError.expired }
        return (link, channel, Array(blindIndex.readableBytesView))
    }

    public func page(_ token: String, now: Date = Date(), logger: Logger) async throws -> SelfServicePage {
        guard let tenantId = SelfServiceLink.claimedTenant(token) else { throw SelfServiceError.invalid }
        return try await database.read(tenantId, logger: logger) { connection in
            let (link, channel, _) = try await verified(
                token, now: now, on: connection, tenantId: tenantId, logger: logger)
            let rows = try await connection.closeSafeQuery(
                """
                SELECT c.id, c.purpose, coalesce(p.name, c.purpose), c.status, c.granted_at, n.language
                FROM consents c
                JOIN notices n ON n.id = c.notice_id
                LEFT JOIN purposes p ON p.key = c.purpose
                WHERE c.subject_id = \(link.subjectId) AND c.status IN ('granted', 'pending')
                ORDER BY coalesce(p.position, 1000), c.purpose
                """, logger: logger)
            var consents: [SelfServiceConsent] = []
            var language: String?
            var newest: Date?
            for try await (id, purpose, name, status, grantedAt, noticeLanguage) in rows.decode(
                (UUID, String, String, String, Date?, String).self)
            {
                guard let status = ConsentStatus(rawValue: status) else { continue }
                consents.append(
                    SelfServiceConsent(
                        id: id, purpose: purpose, purposeName: name, status: status, grantedAt: grantedAt))
                if let grantedAt, newest.map({ grantedAt > $0 }) ?? true {
                    newest = grantedAt
                    language = noticeLanguage
                }
                if language == nil { language = noticeLanguage }
            }
            return SelfServicePage(link: link, channel: channel, language: language, consents: consents)
        }
    }

    /// Withdraws the purposes named, or every one (nil), for the link's subject. A link that does not verify
    /// throws `SelfServiceError` from `database.commit`, having changed nothing.
    public func withdraw(_ token: String, purposes: [String]?, now: Date = Date()) throws -> UnitOfWork<
        SelfServiceWithdrawal
    > {
        guard let tenantId = SelfServiceLink.claimedTenant(token) else { throw SelfServiceError.invalid }
        return UnitOfWork(tenantId: tenantId) { [self] connection, logger in
            let (link, channel, blindIndex) = try await verified(
                token, now: now, on: connection, tenantId: tenantId, logger: logger)
            let caller = CallerIdentity.channel(Self.actor, tenantId: tenantId, vouchedBy: link.issuedBy)
            let revoked = try await ConsentLedger.withdraw(
                subjectId: link.subjectId, channel: channel, purposes: purposes, source: .selfService,
                tenantId: tenantId, caller: caller, on: connection, logger: logger)
            return SelfServiceWithdrawal(
                revoked: revoked,
                change: try await ConsentLedger.changePosition(
                    tenantId: tenantId, channel: channel, blindIndex: blindIndex, on: connection, logger: logger))
        }
    }
}
