import ConsentCore
import Foundation
import Testing

@testable import ConsentStore

/// The catalogue cache's rules apart from the database: it answers only while listening, a read that raced a
/// change never puts the old catalogue back, and a token newer than what an entry covers reads through.
@Suite struct CatalogueCacheTests {
    static let tenant = UUID()
    static let other = UUID()
    static let key = CatalogueCache.TemplateKey(name: "order_shipped", language: "en_US")
    static func template(_ status: TemplateStatus) -> ResolvedTemplate {
        ResolvedTemplate(
            id: UUID(), version: 1, category: .utility, purpose: "shipping_update", purposeCategory: .utility,
            status: status)
    }

    @Test func itAnswersOnlyWhileListeningAndForgetsWhenTheFeedRestarts() {
        let cache = CatalogueCache()
        var lookup = cache.category(of: "tips", tenantId: Self.tenant)
        cache.fill(.utility, of: "tips", tenantId: Self.tenant, ticket: lookup.ticket, covered: 0)
        #expect(cache.category(of: "tips", tenantId: Self.tenant).category == nil, "not listening: nothing kept")
        cache.setListening(true, freshUntil: .max)
        lookup = cache.category(of: "tips", tenantId: Self.tenant)
        cache.fill(.utility, of: "tips", tenantId: Self.tenant, ticket: lookup.ticket, covered: 0)
        #expect(cache.category(of: "tips", tenantId: Self.tenant).category == .utility)
        cache.setListening(true, freshUntil: .max)
        #expect(cache.category(of: "tips", tenantId: Self.tenant).category == nil, "a restarted feed empties it")
    }

    @Test func aReadThatRacedAChangeIsNotKept() {
        let cache = CatalogueCache()
        cache.setListening(true, freshUntil: .max)
        let before = cache.template(Self.key, tenantId: Self.tenant)
        // The platform pauses the template while the read of the approved one is in flight.
        cache.invalidate(Self.tenant, position: 7)
        cache.fill(Self.template(.approved), for: Self.key, tenantId: Self.tenant, ticket: before.ticket, covered: 0)
        #expect(cache.template(Self.key, tenantId: Self.tenant).found == nil)
        let after = cache.template(Self.key, tenantId: Self.tenant)
        cache.fill(Self.template(.paused), for: Self.key, tenantId: Self.tenant, ticket: after.ticket, covered: 0)
        #expect(cache.template(Self.key, tenantId: Self.tenant).found?.status == .paused)
        // The entry covers the change that invalidated it; a newer token reads through.
        #expect(cache.template(Self.key, tenantId: Self.tenant, minimumPosition: 7).found != nil)
        #expect(cache.template(Self.key, tenantId: Self.tenant, minimumPosition: 8).found == nil)
    }

    @Test func aChangeDropsOneTenantsCatalogueOnly() {
        let cache = CatalogueCache()
        cache.setListening(true, freshUntil: .max)
        for tenant in [Self.tenant, Self.other] {
            let lookup = cache.category(of: "tips", tenantId: tenant)
            cache.fill(.marketing, of: "tips", tenantId: tenant, ticket: lookup.ticket, covered: 0)
            let template = cache.template(Self.key, tenantId: tenant)
            cache.fill(Self.template(.approved), for: Self.key, tenantId: tenant, ticket: template.ticket, covered: 0)
        }
        cache.invalidate(Self.tenant, position: 3)
        #expect(cache.category(of: "tips", tenantId: Self.tenant).category == nil)
        #expect(cache.template(Self.key, tenantId: Self.tenant).found == nil)
        #expect(cache.category(of: "tips", tenantId: Self.other).category == .marketing)
        #expect(cache.template(Self.key, tenantId: Self.other).found?.status == .approved)
    }
}
