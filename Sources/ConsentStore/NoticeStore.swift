import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

public enum NoticeStoreError: Error, Equatable {
    case unknownPurposes([String])
}

/// Notices are written once and never changed; each new wording for a channel and language gets the next version.
public struct NoticeStore: Sendable {
    let client: PostgresClient
    public init(client: PostgresClient) { self.client = client }

    static let columns = "id, channel, language, version, text, text_sha256, purposes, created_at"

    /// Inside a write transaction: the unknown purposes are refused before anything is stored.
    /// A new notice: immutable, so new wording is always a new notice (and a new version of its language's).
    public func create(
        channel: MessageChannel, language: String, text: String, purposes: [String], caller: CallerIdentity
    ) -> UnitOfWork<Notice> {
        // A notice changes no consent: nothing for the check cache to drop.
        UnitOfWork(
            tenantId: caller.tenantId, changes: { _ in [] },
            body: { connection, logger in
                try await Self.create(
                    tenantId: caller.tenantId, channel: channel, language: language, text: text, purposes: purposes,
                    actor: caller, on: connection, logger: logger)
            })
    }

    public static func create(
        tenantId: UUID, channel: MessageChannel, language: String, text: String, purposes: [String],
        actor: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Notice {
        let unknown = try await PurposeStore.unknown(purposes, on: connection, logger: logger)
        guard unknown.isEmpty else { throw NoticeStoreError.unknownPurposes(unknown) }
        let id = UUID()
        let hash = Array(SHA256.hash(data: Array(text.utf8)))
        // Versions are per (tenant, channel, language); the lock makes concurrent creations take turns rather
        // than collide on the unique version.
        // Read to the end, so that an error while waiting for the lock is raised here (AuditSequencer).
        _ = try await connection.closeSafeQuery(
            "SELECT pg_advisory_xact_lock(hashtext(\(tenantId.lowercased + channel.rawValue + language)))",
            logger: logger
        ).collect()
        let rows = try await connection.closeSafeQuery(
            """
            INSERT INTO notices (id, tenant_id, channel, language, version, text, text_sha256, purposes, created_by)
            SELECT \(id), \(tenantId), \(channel.rawValue), \(language),
                   coalesce(max(version), 0) + 1, \(text), \(ByteBuffer(bytes: hash)), \(purposes), \(actor.keyId)
            FROM notices WHERE channel = \(channel.rawValue) AND language = \(language)
            RETURNING \(unescaped: columns)
            """, logger: logger)
        guard let notice = try await Self.notices(rows).first else { throw NoticeStoreError.unknownPurposes([]) }
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .noticeCreated, actor: actor.actor,
                    data: [
                        "noticeId": .id(notice.id), "channel": .string(channel.rawValue), "language": .string(language),
                        "version": .int(Int64(notice.version)), "textSha256": .string(notice.textSha256),
                        "purposes": .strings(purposes),
                    ])
            ],
            tenantId: tenantId, on: connection, logger: logger)
        return notice
    }

    public func list(tenantId: UUID, logger: Logger) async throws -> [Notice] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await Self.notices(
                connection.closeSafeQuery(
                    "SELECT \(unescaped: Self.columns) FROM notices ORDER BY created_at, channel, language, version",
                    logger: logger))
        }
    }

    public func get(tenantId: UUID, id: UUID, logger: Logger) async throws -> Notice? {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await Self.get(id, on: connection, logger: logger)
        }
    }

    static func get(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Notice? {
        try await notices(
            connection.closeSafeQuery("SELECT \(unescaped: columns) FROM notices WHERE id = \(id)", logger: logger)
        ).first
    }

    static func notices(_ rows: StoreRows) async throws -> [Notice] {
        var notices: [Notice] = []
        for try await (id, channel, language, version, text, hash, purposes, createdAt) in rows.decode(
            (UUID, String, String, Int, String, ByteBuffer, [String], Date).self)
        {
            guard let channel = MessageChannel(rawValue: channel) else { continue }
            notices.append(
                Notice(
                    id: id, channel: channel, language: language, version: version, text: text,
                    textSha256: Array(hash.readableBytesView).hexString, purposes: purposes, createdAt: createdAt))
        }
        return notices
    }
}
