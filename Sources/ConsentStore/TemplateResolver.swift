import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// The check path's read of templates: the deciding version of a name and language, from the catalogue cache or
/// one round trip.
public struct TemplateResolver: Sendable {
    let client: PostgresClient
    let catalogue: CatalogueCache?
    /// Checks run outside the request deadline (docs/operations.md), so their reads carry their own, as
    /// `ConsentLookup`'s do.
    let readDeadline: Duration?

    /// The latest approved version; else the latest paused one (so a sender hears `template_paused`); else the
    /// latest of any status. Nil when the tenant has no template of that name and language.
    public func resolve(
        name: String, language: String, tenantId: UUID, minimumPosition: Int64 = 0, logger: Logger
    ) async throws -> ResolvedTemplate? {
        let key = CatalogueCache.TemplateKey(name: name, language: language)
        let cached = catalogue?.template(key, tenantId: tenantId, minimumPosition: minimumPosition)
        if let found = cached?.found { return found }
        let resolved = try await read(name: name, language: language, tenantId: tenantId, logger: logger)
        // Only templates the tenant has are cached: names a sender makes up would otherwise grow the cache without
        // bound, and asking for one the tenant lacks is an error that may well cost a read.
        if let cached, let resolved {
            catalogue?.fill(resolved, for: key, tenantId: tenantId, ticket: cached.ticket, covered: minimumPosition)
        }
        return resolved
    }

    private func read(name: String, language: String, tenantId: UUID, logger: Logger) async throws
        -> ResolvedTemplate?
    {
        guard let readDeadline else {
            return try await query(name: name, language: language, tenantId: tenantId, logger: logger)
        }
        return try await withDeadline(readDeadline, grace: .seconds(1)) {
            try await query(name: name, language: language, tenantId: tenantId, logger: logger)
        }
    }

    private func query(name: String, language: String, tenantId: UUID, logger: Logger) async throws
        -> ResolvedTemplate?
    {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT t.id, t.version, t.category, t.purpose, p.category, t.status
                FROM message_templates t JOIN purposes p ON p.key = t.purpose
                WHERE t.name = \(name) AND t.language = \(language)
                ORDER BY (t.status = 'approved') DESC, (t.status = 'paused') DESC, t.version DESC
                LIMIT 1
                """, logger: logger)
            for try await (id, version, category, purpose, purposeCategory, status) in rows.decode(
                (UUID, Int, String, String, String, String).self)
            {
                guard let category = PurposeCategory(rawValue: category),
                    let purposeCategory = PurposeCategory(rawValue: purposeCategory),
                    let status = TemplateStatus(rawValue: status)
                else { throw TemplateStore.UnknownValue(text: "\(category) \(purposeCategory) \(status)") }
                return ResolvedTemplate(
                    id: id, version: version, category: category, purpose: purpose, purposeCategory: purposeCategory,
                    status: status) as ResolvedTemplate?
            }
            return nil
        }
    }
}
