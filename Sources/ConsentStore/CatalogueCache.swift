import ConsentCore
import Foundation
import Synchronization

/// What the check path caches of each tenant's catalogue: the category of each purpose a check has named, and the
/// deciding version of each template (or that there is none). A tenant can re-categorise its own purposes (a
/// newsletter from utility to marketing changes what a send needs) and the platform pauses and re-categorises
/// templates, so an entry is dropped by a catalogue change in the change log, here before the write is acknowledged and on other
/// instances by `ConsentChangeListener`, and answered only while that listener follows the log. The same rules as
/// `ConsentStateCache` keep a racing read from re-inserting what a change replaced: fills carry the ticket of their
/// lookup, and an invalidation leaves a tombstone with a later one.
public final class CatalogueCache: Sendable {
    /// The change log's channel for a catalogue change (`app_catalogue_change`, migration 0010).
    static let changeChannel = "catalogue"

    /// A template by the name and language a sender asks with.
    public struct TemplateKey: Hashable, Sendable {
        public let name: String
        public let language: String
        public init(name: String, language: String) {
            self.name = name
            self.language = language
        }
    }

    private struct Catalogue {
        var purposes: [String: PurposeCategory] = [:]
        /// Only templates the tenant has: an unknown name is never cached (`TemplateResolver`).
        var templates: [TemplateKey: ResolvedTemplate] = [:]
    }

    private enum Slot {
        case catalogue(Catalogue, covered: Int64, since: UInt64)
        case tombstone(ticket: UInt64, position: Int64)
    }

    private struct State {
        var tenants: [UUID: Slot] = [:]
        var ticket: UInt64 = 0
        var floor: UInt64 = 0
        var enabled = false
        var freshUntil: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public struct Lookup: Sendable {
        public let category: PurposeCategory?
        public let ticket: UInt64
    }

    /// The cached category of `purpose`, when the tenant's entry covers `minimumPosition`.
    public func category(of purpose: String, tenantId: UUID, minimumPosition: Int64 = 0) -> Lookup {
        let (catalogue, ticket) = read(tenantId, minimumPosition: minimumPosition)
        return Lookup(category: catalogue?.purposes[purpose], ticket: ticket)
    }

    /// The cached deciding version of a template, nil when not cached.
    public func template(_ key: TemplateKey, tenantId: UUID, minimumPosition: Int64 = 0)
        -> (found: ResolvedTemplate?, ticket: UInt64)
    {
        let (catalogue, ticket) = read(tenantId, minimumPosition: minimumPosition)
        return (catalogue?.templates[key], ticket)
    }

    /// Stores what the database answered for a lookup's miss, unless the catalogue changed since the lookup.
    public func fill(_ category: PurposeCategory, of purpose: String, tenantId: UUID, ticket: UInt64, covered: Int64) {
        update(tenantId, ticket: ticket, covered: covered) { $0.purposes[purpose] = category }
    }

    public func fill(
        _ template: ResolvedTemplate, for key: TemplateKey, tenantId: UUID, ticket: UInt64, covered: Int64
    ) {
        update(tenantId, ticket: ticket, covered: covered) { $0.templates[key] = template }
    }

    private func read(_ tenantId: UUID, minimumPosition: Int64) -> (Catalogue?, UInt64) {
        let now = FeedClock.now()
        return state.withLock { state in
            state.ticket += 1
            guard state.enabled, now < state.freshUntil,
                case .catalogue(let catalogue, let covered, _) = state.tenants[tenantId],
                covered >= minimumPosition
            else { return (nil, state.ticket) }
            return (catalogue, state.ticket)
        }
    }

    private func update(_ tenantId: UUID, ticket: UInt64, covered: Int64, _ change: (inout Catalogue) -> Void) {
        state.withLock { state in
            guard state.enabled, ticket >= state.floor else { return }
            switch state.tenants[tenantId] {
            case .tombstone(let invalidated, let position):
                guard invalidated < ticket else { return }
                var catalogue = Catalogue()
                change(&catalogue)
                state.tenants[tenantId] = .catalogue(catalogue, covered: max(covered, position), since: invalidated)
            case .catalogue(var catalogue, let previous, let since):
                guard since < ticket else { return }
                change(&catalogue)
                state.tenants[tenantId] = .catalogue(catalogue, covered: min(previous, covered), since: since)
            case nil:
                var catalogue = Catalogue()
                change(&catalogue)
                state.tenants[tenantId] = .catalogue(catalogue, covered: covered, since: state.floor)
            }
        }
    }

    /// Forgets the tenant's catalogue: a change at `position` was committed.
    public func invalidate(_ tenantId: UUID, position: Int64) {
        state.withLock { state in
            state.ticket += 1
            guard state.enabled else { return }
            var latest = position
            if case .tombstone(_, let earlier) = state.tenants[tenantId] { latest = max(earlier, position) }
            state.tenants[tenantId] = .tombstone(ticket: state.ticket, position: latest)
        }
    }

    /// On or off with the change feed; emptied either way, since changes missed meanwhile are not replayed. On, it
    /// answers until `freshUntil`, as the check cache does.
    public func setListening(_ listening: Bool, freshUntil: UInt64) {
        state.withLock { state in
            state.freshUntil = listening ? freshUntil : 0
            state.ticket += 1
            state.floor = state.ticket
            state.tenants.removeAll()
            state.enabled = listening
        }
    }

    public func extendFreshness(until time: UInt64) {
        state.withLock { state in if state.enabled { state.freshUntil = time } }
    }
}
