import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

public enum TemplateStoreError: Error, Equatable {
    case unknownPurpose(String)
    /// The template's purpose is of another category (a utility template names a utility purpose).
    case categoryMismatch(purpose: String, purposeCategory: PurposeCategory)
    /// A utility template with lint findings is approved only with an override and its reason.
    case findingsNeedOverride
    case notFound
}

/// A change the platform made to a template, by name and language (its webhooks know no ids of ours).
public enum TemplatePlatformChange: Sendable, Equatable {
    /// `at`: when the platform raised it; an event older than the last one applied is stale and ignored.
    case status(TemplateStatus, platformEvent: String, reason: String?, at: Date?)
    case category(PurposeCategory, at: Date?)
    case quality(String)
}

/// The tenant's message templates: registered, versioned, linted, and moved through the platform's review. Every
/// write is a unit of work with its audit event and a catalogue change, so a check on any instance sees a paused
/// or re-categorised template from its next question on.
public struct TemplateStore: Sendable {
    let database: ConsentDatabase
    var client: PostgresClient { database.client }

    init(database: ConsentDatabase) { self.database = database }

    static let columns = """
        id, name, language, version, category, purpose, body, body_sha256, header::text, buttons::text,
        lint_findings::text, status, status_reason, quality, created_at
        """

    /// Registers a template; the same name and language again is its next version. Lint findings are stored with
    /// it: they do not block registration, only approval without an override.
    public func register(
        name: String, language: String, category: PurposeCategory, purpose: String, body: String,
        header: TemplateHeader?, buttons: [TemplateButton], findings: [TemplateLintFinding], caller: CallerIdentity,
        logger: Logger
    ) async throws -> (template: MessageTemplate, token: ConsistencyToken) {
        let tenantId = caller.tenantId
        let work = UnitOfWork<Catalogued<MessageTemplate>>(
            tenantId: tenantId, changes: { _ in [] }, catalogueChange: { $0.position },
            body: { connection, logger in
                let categories = try await connection.closeSafeQuery(
                    "SELECT category FROM purposes WHERE key = \(purpose)", logger: logger
                ).decode(String.self).array()
                guard let text = categories.first, let purposeCategory = PurposeCategory(rawValue: text) else {
                    throw TemplateStoreError.unknownPurpose(purpose)
                }
                guard purposeCategory == category else {
                    throw TemplateStoreError.categoryMismatch(purpose: purpose, purposeCategory: purposeCategory)
                }
                // Versions are per (tenant, name, language); the lock makes concurrent registrations take turns.
                // Read to the end, so that an error while waiting for the lock is raised here (AuditSequencer).
                _ = try await connection.closeSafeQuery(
                    "SELECT pg_advisory_xact_lock(hashtext(\("template " + tenantId.lowercased + name + language)))",
                    logger: logger
                ).collect()
                let id = UUID()
                let hash = ByteBuffer(bytes: SHA256.hash(data: Array(body.utf8)))
                let rows = try await connection.closeSafeQuery(
                    """
                    INSERT INTO message_templates (id, tenant_id, channel, name, language, version, category, purpose,
                                                   body, body_sha256, header, buttons, lint_findings, created_by)
                    SELECT \(id), \(tenantId), 'whatsapp', \(name), \(language), coalesce(max(version), 0) + 1,
                           \(category.rawValue), \(purpose), \(body), \(hash), \(try Self.json(header))::jsonb,
                           \(try Self.json(buttons))::jsonb, \(try Self.json(findings))::jsonb, \(caller.keyId)
                    FROM message_templates WHERE name = \(name) AND language = \(language)
                    RETURNING \(unescaped: Self.columns)
                    """, logger: logger)
                guard let template = try await Self.templates(rows).first else { throw TemplateStoreError.notFound }
                try await AuditTrail.append(
                    [
                        AuditEvent(
                            action: .templateCreated, actor: caller.actor,
                            data: [
                                "templateId": .id(template.id), "name": .string(name), "language": .string(language),
                                "version": .int(Int64(template.version)), "category": .string(category.rawValue),
                                "purpose": .string(purpose), "bodySha256": .string(template.bodySha256),
                                "lintFindings": .int(Int64(findings.count)),
                            ])
                    ], tenantId: tenantId, on: connection, logger: logger)
                let position = try await ConsentLedger.catalogueChange(
                    tenantId: tenantId, on: connection, logger: logger)
                return Catalogued(value: template, position: position)
            })
        let done = try await database.commit(work, logger: logger)
        return (done.value, ConsistencyToken(position: done.position))
    }

    /// An admin's review decision (or a correction of the platform's). A utility template with lint findings is
    /// approved only with `override` and a reason, both in the audit event.
    public func setStatus(
        id: UUID, status: TemplateStatus, reason: String?, override: Bool, caller: CallerIdentity, logger: Logger
    ) async throws -> (template: MessageTemplate, token: ConsistencyToken) {
        let tenantId = caller.tenantId
        let work = UnitOfWork<Catalogued<MessageTemplate>>(
            tenantId: tenantId, changes: { _ in [] }, catalogueChange: { $0.position },
            body: { connection, logger in
                let current = try await Self.templates(
                    connection.closeSafeQuery(
                        "SELECT \(unescaped: Self.columns) FROM message_templates WHERE id = \(id) FOR UPDATE",
                        logger: logger)
                ).first
                guard let current else { throw TemplateStoreError.notFound }
                if status == .approved, current.category == .utility, !current.findings.isEmpty {
                    guard override, let reason, !reason.isEmpty else { throw TemplateStoreError.findingsNeedOverride }
                }
                let updated = try await Self.templates(
                    connection.closeSafeQuery(
                        """
                        UPDATE message_templates SET status = \(status.rawValue), status_reason = \(reason),
                               updated_at = now()
                        WHERE id = \(id) RETURNING \(unescaped: Self.columns)
                        """, logger: logger)
                ).first
                guard let updated else { throw TemplateStoreError.notFound }
                var data: [String: AuditValue] = [
                    "templateId": .id(id), "name": .string(current.name), "language": .string(current.language),
                    "version": .int(Int64(current.version)), "from": .string(current.status.rawValue),
                    "to": .string(status.rawValue), "source": .string("api"), "override": .bool(override),
                ]
                if let reason { data["reason"] = .string(reason) }
                try await AuditTrail.append(
                    [AuditEvent(action: .templateStatusChanged, actor: caller.actor, data: data)],
                    tenantId: tenantId, on: connection, logger: logger)
                let position = try await ConsentLedger.catalogueChange(
                    tenantId: tenantId, on: connection, logger: logger)
                return Catalogued(value: updated, position: position)
            })
        let done = try await database.commit(work, logger: logger)
        return (done.value, ConsistencyToken(position: done.position))
    }

    /// What the platform's webhook reports. The platform holds one template per name and language, whose wording
    /// our versions record, so: a pause or a disabling reaches every version a check could pick (the approved and
    /// paused ones, and the latest); an approval reaches the latest and lifts a pause; a rejection or a return to
    /// review reaches the latest; a new category reaches every version. An event older than the last one applied
    /// (Meta retries) changes nothing. Nil when the tenant has no such template, or the event is stale.
    public func applyPlatformChange(
        _ change: TemplatePlatformChange, name: String, language: String, tenantId: UUID, actor: String,
        logger: Logger
    ) async throws -> ConsistencyToken? {
        let work = UnitOfWork<Catalogued<MessageTemplate>?>(
            tenantId: tenantId, changes: { _ in [] }, catalogueChange: { $0?.position },
            body: { connection, logger in
                let latest = try await Self.templates(
                    connection.closeSafeQuery(
                        """
                        SELECT \(unescaped: Self.columns) FROM message_templates
                        WHERE name = \(name) AND language = \(language) ORDER BY version DESC LIMIT 1 FOR UPDATE
                        """, logger: logger)
                ).first
                guard let latest else { return nil }
                let stamps = try await connection.closeSafeQuery(
                    """
                    SELECT max(platform_status_at), max(platform_category_at) FROM message_templates
                    WHERE name = \(name) AND language = \(language)
                    """, logger: logger
                ).decode((Date?, Date?).self).array().first
                var data: [String: AuditValue] = [
                    "templateId": .id(latest.id), "name": .string(name), "language": .string(language),
                    "version": .int(Int64(latest.version)), "source": .string("platform"),
                ]
                let action: AuditAction
                switch change {
                case .status(let status, let event, let reason, let at):
                    if let at, let last = stamps?.0, at < last { return nil }
                    let stamp = at ?? Date()
                    switch status {
                    case .paused, .disabled:
                        try await connection.closeSafeQuery(
                            """
                            UPDATE message_templates SET status = \(status.rawValue), status_reason = \(reason),
                                   platform_status_at = \(stamp), updated_at = now()
                            WHERE name = \(name) AND language = \(language)
                              AND (status IN ('approved', 'paused') OR version = \(latest.version))
                            """, logger: logger)
                    case .approved:
                        try await connection.closeSafeQuery(
                            """
                            UPDATE message_templates SET status = 'approved', status_reason = \(reason),
                                   platform_status_at = \(stamp), updated_at = now()
                            WHERE name = \(name) AND language = \(language)
                              AND (status = 'paused' OR version = \(latest.version))
                            """, logger: logger)
                    case .pending, .rejected:
                        try await connection.closeSafeQuery(
                            """
                            UPDATE message_templates SET status = \(status.rawValue), status_reason = \(reason),
                                   platform_status_at = \(stamp), updated_at = now()
                            WHERE id = \(latest.id)
                            """, logger: logger)
                    }
                    action = .templateStatusChanged
                    data["from"] = .string(latest.status.rawValue)
                    data["to"] = .string(status.rawValue)
                    data["platformEvent"] = .string(event)
                    if let reason { data["reason"] = .string(reason) }
                case .category(let category, let at):
                    if let at, let last = stamps?.1, at < last { return nil }
                    try await connection.closeSafeQuery(
                        """
                        UPDATE message_templates SET category = \(category.rawValue),
                               platform_category_at = \(at ?? Date()), updated_at = now()
                        WHERE name = \(name) AND language = \(language)
                        """, logger: logger)
                    action = .templateCategoryChanged
                    data["from"] = .string(latest.category.rawValue)
                    data["to"] = .string(category.rawValue)
                case .quality(let score):
                    try await connection.closeSafeQuery(
                        "UPDATE message_templates SET quality = \(score), updated_at = now() WHERE id = \(latest.id)",
                        logger: logger)
                    action = .templateQualityChanged
                    data["from"] = .string(latest.quality ?? "UNKNOWN")
                    data["to"] = .string(score)
                }
                try await AuditTrail.append(
                    [AuditEvent(action: action, actor: actor, data: data)], tenantId: tenantId, on: connection,
                    logger: logger)
                let position = try await ConsentLedger.catalogueChange(
                    tenantId: tenantId, on: connection, logger: logger)
                return Catalogued(value: latest, position: position)
            })
        return try await database.commit(work, logger: logger).map { ConsistencyToken(position: $0.position) }
    }

    public func list(tenantId: UUID, logger: Logger) async throws -> [MessageTemplate] {
        try await database.read(tenantId, logger: logger) { connection in
            try await Self.templates(
                connection.closeSafeQuery(
                    "SELECT \(unescaped: Self.columns) FROM message_templates ORDER BY name, language, version",
                    logger: logger))
        }
    }

    public func get(tenantId: UUID, id: UUID, logger: Logger) async throws -> MessageTemplate? {
        try await database.read(tenantId, logger: logger) { connection in
            try await Self.templates(
                connection.closeSafeQuery(
                    "SELECT \(unescaped: Self.columns) FROM message_templates WHERE id = \(id)", logger: logger)
            ).first
        }
    }

    static func json<Value: Encodable>(_ value: Value) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    static func templates(_ rows: StoreRows) async throws -> [MessageTemplate] {
        var templates: [MessageTemplate] = []
        let decoder = JSONDecoder()
        for try await row in rows {
            let (id, name, language, version, category, purpose, body, hash, header, buttons, findings) =
                try row.decode(
                    (UUID, String, String, Int, String, String, String, ByteBuffer, String?, String, String).self)
            let columns = row.makeRandomAccess()
            let status = try columns[11].decode(String.self)
            let statusReason = try columns[12].decode(String?.self)
            let quality = try columns[13].decode(String?.self)
            let createdAt = try columns[14].decode(Date.self)
            guard let category = PurposeCategory(rawValue: category), let status = TemplateStatus(rawValue: status)
            else { throw UnknownValue(text: "\(category) \(status)") }
            templates.append(
                MessageTemplate(
                    id: id, name: name, language: language, version: version, category: category, purpose: purpose,
                    body: body, bodySha256: Array(hash.readableBytesView).hexString,
                    header: try header.map { try decoder.decode(TemplateHeader?.self, from: Data($0.utf8)) } ?? nil,
                    buttons: try decoder.decode([TemplateButton].self, from: Data(buttons.utf8)),
                    status: status, statusReason: statusReason, quality: quality,
                    findings: try decoder.decode([TemplateLintFinding].self, from: Data(findings.utf8)),
                    createdAt: createdAt))
        }
        return templates
    }

    /// A value the schema's CHECK constraints should have refused.
    struct UnknownValue: Error {
        let text: String
    }
}

/// A unit's outcome with the position of the catalogue change it wrote.
struct Catalogued<Value: Sendable>: Sendable {
    let value: Value
    let position: Int64
}
