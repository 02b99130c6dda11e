import ConsentCore
import Foundation
import Logging
import PostgresNIO

public enum ConsentSessionError: Error, Equatable {
    /// No session has this token (or it was made for another tenant).
    case notFound
    /// Decided already, or expired: the token can never be used again.
    case gone
}

/// A checkout's consent session, as the widget sees it: the notice to show, a box per category it covers, and how
/// long the token lives.
public struct ConsentSessionView: Sendable, Equatable {
    public let notice: Notice
    /// In the notice's order; the decision answers each of them.
    public let categories: [NoticeCategory]
    public let expiresAt: Date
    /// The tenant's allowed origins: the widget's routes answer cross-origin requests only from these.
    public let allowedOrigins: [AllowedOrigin]
}

public struct ConsentSessionDecision: ConsentStateChanging {
    /// The notice's categories, in its order, and those the person ticked: the only ones whose purposes were
    /// recorded.
    public let categories: [PurposeCategory]
    public let ticked: [PurposeCategory]
    /// The opt-in that the ticked categories recorded; nil when none was ticked, which records nothing.
    public let optIn: OptInResult?
    /// The calling page's CORS verdict (never `.refused`: a refused page decides nothing).
    public let verdict: CallingPage.Verdict

    /// Whether anything was ticked (and so recorded).
    public var accepted: Bool { !ticked.isEmpty }
    public var changes: [ConsentChange] { optIn?.changes ?? [] }
}

/// Consent sessions bind a checkout's subject and notice to a single-use token, so that a page can accept or
/// decline that notice, category by category, for that person and nothing else. The shop's backend opens them with
/// its key; the widget uses the token alone.
public struct ConsentSessionStore: Sendable {
    let database: ConsentDatabase
    var keyring: TenantKeyring { database.keyring }

    public init(database: ConsentDatabase) {
        self.database = database
    }

    public struct Opened: ConsentStateChanging {
        public let token: TenantToken
        public let expiresAt: Date
        public var changes: [ConsentChange] { [] }
    }

    /// Binds the subject and notice to a new token. `pageUrl` has been checked like provenance; it is sealed under
    /// the subject's data key.
    public func open(
        subject: SubjectIdentifier, noticeId: UUID, pageUrl: String, lifetime: TimeInterval, caller: CallerIdentity
    ) -> UnitOfWork<Opened> {
        UnitOfWork(tenantId: caller.tenantId) { [keyring] connection, logger in
            try await Self.open(
                subject: subject,
                blindIndex: try await keyring.blindIndex(
                    subject, on: connection, tenantId: caller.tenantId, logger: logger),
                noticeId: noticeId, pageUrl: pageUrl, lifetime: lifetime, caller: caller, keyring: keyring,
                on: connection, logger: logger)
        }
    }

    /// Inside the caller's write transaction (`consentd dev`'s demo shop opens one beside its notice).
    public static func open(
        subject: SubjectIdentifier, blindIndex: [UInt8], noticeId: UUID, pageUrl: String, lifetime: TimeInterval,
        caller: CallerIdentity, keyring: TenantKeyring, on connection: PostgresConnection, logger: Logger
    ) async throws -> Opened {
        guard let notice = try await NoticeStore.get(noticeId, on: connection, logger: logger) else {
            throw ConsentWriteError.noticeNotFound
        }
        guard notice.channel == subject.channel else { throw ConsentWriteError.noticeForAnotherChannel(notice.channel) }
        let handle = try await SubjectDirectory.findOrCreate(
            subject, blindIndex: blindIndex, tenantId: caller.tenantId, keyring: keyring, on: connection, logger: logger
        )
        let id = UUID()
        let token = TenantToken.generate(tenantId: caller.tenantId)
        let sealedPage = handle.seal(Array(pageUrl.utf8), context: "consent-session:\(id.lowercased)")
        let rows = try await connection.closeSafeQuery(
            """
            INSERT INTO consent_sessions (id, tenant_id, token_sha256, subject_id, notice_id, page_url_ciphertext,
                                          created_by, expires_at)
            VALUES (\(id), \(caller.tenantId), \(ByteBuffer(bytes: token.sha256)), \(handle.id), \(notice.id),
                    \(ByteBuffer(bytes: sealedPage)), \(caller.keyId), now() + make_interval(secs => \(lifetime)))
            RETURNING expires_at
            """, logger: logger)
        guard let expiresAt = try await rows.decode(Date.self).array().first else { throw ConsentSessionError.notFound }
        return Opened(token: token, expiresAt: expiresAt)
    }

    struct Row {
        let id: UUID
        let subjectId: UUID
        let noticeId: UUID
        let pageUrl: [UInt8]
        let createdBy: UUID
        let expiresAt: Date
        let usable: Bool
    }

    static func row(_ token: TenantToken, forUpdate: Bool, on connection: PostgresConnection, logger: Logger)
        async throws -> Row
    {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT s.id, s.subject_id, s.notice_id, s.page_url_ciphertext, s.created_by, s.expires_at,
                   s.decided_at IS NULL AND s.expires_at > now() AND subj.erased_at IS NULL
            FROM consent_sessions s JOIN subjects subj ON subj.id = s.subject_id
            WHERE s.token_sha256 = \(ByteBuffer(bytes: token.sha256))
            \(unescaped: forUpdate ? "FOR UPDATE OF s" : "")
            """, logger: logger)
        guard
            let (id, subjectId, noticeId, page, createdBy, expiresAt, usable) = try await rows.decode(
                (UUID, UUID, UUID, ByteBuffer, UUID, Date, Bool).self
            ).array().first
        else { throw ConsentSessionError.notFound }
        return Row(
            id: id, subjectId: subjectId, noticeId: noticeId, pageUrl: Array(page.readableBytesView),
            createdBy: createdBy, expiresAt: expiresAt, usable: usable)
    }

    /// The notice the widget shows. A used or expired token is `gone`; its tenant's origins come along, so the
    /// route can answer CORS in the same round trips.
    public func describe(_ token: TenantToken, logger: Logger) async throws -> ConsentSessionView {
        try await database.read(token.tenantId, logger: logger) { connection in
            let session = try await Self.row(token, forUpdate: false, on: connection, logger: logger)
            guard session.usable else { throw ConsentSessionError.gone }
            guard let notice = try await NoticeStore.get(session.noticeId, on: connection, logger: logger) else {
                throw ConsentSessionError.notFound
            }
            return ConsentSessionView(
                notice: notice, categories: try await NoticeCategory.of(notice, on: connection, logger: logger),
                expiresAt: session.expiresAt,
                allowedOrigins: try await TenantSettingsStore.origins(on: connection, logger: logger))
        }
    }

    /// The tenant's allowed origins, for a preflight that has only the token.
    public func allowedOrigins(_ token: TenantToken, logger: Logger) async throws -> [AllowedOrigin] {
        try await database.read(token.tenantId, logger: logger) { connection in
            try await TenantSettingsStore.origins(on: connection, logger: logger)
        }
    }

    /// Uses the token once. The ticked categories' purposes, and no others, are recorded for the bound subject by
    /// `checkbox`, with the session's page and the request's user agent and address as provenance; with nothing
    /// ticked only the session's end is recorded. The calling page is checked against the tenant's allowed origins
    /// in the same transaction, and the choice against the notice's categories: a refused page, or a choice that
    /// does not fit the notice (`ConsentSessionChoiceError`), uses nothing up.
    public func decide(
        _ token: TenantToken, choice: ConsentSessionChoice, userAgent: String?, ipAddress: String?, page: CallingPage
    ) -> UnitOfWork<ConsentSessionDecision> {
        UnitOfWork(tenantId: token.tenantId) { [keyring] connection, logger in
            let verdict = page.verdict(
                allowed: try await TenantSettingsStore.origins(on: connection, logger: logger), requiringOrigin: true)
            guard case .allowed(let origin) = verdict else { throw ConsentSessionOriginRefused() }
            let session = try await Self.row(token, forUpdate: true, on: connection, logger: logger)
            guard session.usable else { throw ConsentSessionError.gone }
            guard let notice = try await NoticeStore.get(session.noticeId, on: connection, logger: logger) else {
                throw ConsentSessionError.gone
            }
            let categories = try await NoticeCategory.of(notice, on: connection, logger: logger)
            let ticked = try choice.ticked(of: categories)
            var result: OptInResult?
            if !ticked.isEmpty {
                // In the notice's order, as a whole-notice acceptance always recorded them.
                let purposes = Set(ticked.flatMap { $0.purposes.map(\.key) })
                let boxes = Dictionary(
                    uniqueKeysWithValues: categories.map { box in
                        (box.category.rawValue, ticked.contains { $0.category == box.category })
                    })
                result = try await Self.accept(
                    session, notice: notice, purposes: notice.purposes.filter(purposes.contains), boxes: boxes,
                    tenantId: token.tenantId, userAgent: userAgent, ipAddress: ipAddress, origin: origin,
                    keyring: keyring, on: connection, logger: logger)
            }
            try await connection.closeSafeQuery(
                """
                UPDATE consent_sessions SET decided_at = now(), decision = \(ticked.isEmpty ? "declined" : "accepted"),
                       collection_id = \(result?.collectionId)
                WHERE id = \(session.id)
                """, logger: logger)
            return ConsentSessionDecision(
                categories: categories.map(\.category), ticked: ticked.map(\.category), optIn: result, verdict: verdict)
        }
    }

    /// Records `purposes` of the session's notice for its subject, with the stored blind index (the session holds
    /// no identifier in the clear, and the subject's own is opened only to name the subject to the opt-in).
    static func accept(
        _ session: Row, notice: Notice, purposes: [String], boxes: [String: Bool], tenantId: UUID, userAgent: String?,
        ipAddress: String?, origin: String,
        keyring: TenantKeyring, on connection: PostgresConnection, logger: Logger
    ) async throws -> OptInResult {
        let handle = try await SubjectDirectory.open(
            session.subjectId, keyring: keyring, on: connection, logger: logger)
        let subjectRows = try await connection.closeSafeQuery(
            "SELECT channel, identifier_ciphertext, blind_index FROM subjects WHERE id = \(session.subjectId)",
            logger: logger)
        guard
            let (channelText, sealedIdentifier, storedIndex) = try await subjectRows.decode(
                (String, ByteBuffer?, ByteBuffer?).self
            ).array().first,
            let channel = MessageChannel(rawValue: channelText), let sealedIdentifier, let storedIndex
        else { throw ConsentSessionError.gone }
        let identifier = String(
            decoding: try handle.open(Array(sealedIdentifier.readableBytesView), context: "identifier"), as: UTF8.self)
        let pageUrl = String(
            decoding: try handle.open(session.pageUrl, context: "consent-session:\(session.id.lowercased)"),
            as: UTF8.self)
        let provenance = Provenance(
            pageUrl: pageUrl,
            userAgent: userAgent.map { String($0.utf8.prefix(Provenance.maxUserAgentLength)) ?? "" },
            ipAddress: ipAddress.flatMap(IPAddressText.normalised), boxes: boxes,
            origin: AllowedOrigin(origin)?.description ?? origin)
        let caller = CallerIdentity.channel(
            "consent_session:\(session.id.lowercased)", tenantId: tenantId, vouchedBy: session.createdBy)
        return try await ConsentLedger.recordOptIn(
            OptIn(
                subject: try SubjectIdentifier(identifier, channel: channel), purposes: purposes,
                noticeId: notice.id, method: .checkbox, collectedAt: Date(), provenance: provenance),
            blindIndex: Array(storedIndex.readableBytesView), tenantId: tenantId, caller: caller, keyring: keyring,
            suppression: false, on: connection, logger: logger)
    }
}

/// The request came from a page whose origin the tenant has not allowed.
public struct ConsentSessionOriginRefused: Error {
    public init() {}
}
