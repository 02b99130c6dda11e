import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// One state change as the store describes it: the tenant it belongs to, the statements that make the change and
/// append its audit events, and what cached state it changes (subjects' consent states, live API keys). Only the
/// store makes these; `ConsentDatabase.commit` is the one thing that runs them.
public struct UnitOfWork<Outcome: Sendable>: Sendable {
    /// How the work reaches the database.
    enum Shape: Sendable {
        /// Several statements, in one transaction that names the tenant first.
        case transaction
        /// The change is made by one statement that names its tenant itself (a function in sql/); statements
        /// before it only read, and name the tenant too. Without an idempotency claim to commit beside it, no
        /// explicit transaction is opened: the statement alone is atomic, and BEGIN, the tenant's name and COMMIT
        /// cost no round trips. The tenant's keys are in memory before it runs (`TenantKeyring.load`).
        case statement
    }

    let tenantId: UUID
    let shape: Shape
    let body: @Sendable (PostgresConnection, Logger) async throws -> Outcome
    let changes: @Sendable (Outcome) -> [ConsentChange]
    /// The API keys the outcome revoked, which the key cache must stop answering for.
    let revokedKeys: @Sendable (Outcome) -> [UUID]
    /// The position of the change the outcome made to its tenant's catalogue, if it made one.
    let catalogueChange: @Sendable (Outcome) -> Int64?
    /// The same change as part of a group commit (`WriteGroups`), tried first when a `.statement` unit runs without
    /// an idempotency claim: it answers the outcome, or nil when the change must be made alone by `body` after
    /// all (nothing was written).
    let grouped: (@Sendable (WriteGroups, Logger) async throws -> Outcome?)?

    init(
        tenantId: UUID, shape: Shape = .transaction, changes: @escaping @Sendable (Outcome) -> [ConsentChange],
        revokedKeys: @escaping @Sendable (Outcome) -> [UUID] = { _ in [] },
        catalogueChange: @escaping @Sendable (Outcome) -> Int64? = { _ in nil },
        grouped: (@Sendable (WriteGroups, Logger) async throws -> Outcome?)? = nil,
        body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Outcome
    ) {
        self.tenantId = tenantId
        self.shape = shape
        self.body = body
        self.changes = changes
        self.revokedKeys = revokedKeys
        self.catalogueChange = catalogueChange
        self.grouped = grouped
    }
}

extension UnitOfWork where Outcome: ConsentStateChanging {
    init(
        tenantId: UUID, shape: Shape = .transaction,
        grouped: (@Sendable (WriteGroups, Logger) async throws -> Outcome?)? = nil,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Outcome
    ) {
        self.init(tenantId: tenantId, shape: shape, changes: { $0.changes }, grouped: grouped, body: body)
    }
}

/// An outcome that names the subjects whose consent state it changed (none, for a write that changed nothing a
/// check reads).
public protocol ConsentStateChanging: Sendable {
    var changes: [ConsentChange] { get }
}

extension UnitOfWork {
    /// A change to rows no check reads (an import's own progress, its chunks, its lease): nothing to invalidate.
    static func bookkeeping(
        _ tenantId: UUID, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Outcome
    ) -> UnitOfWork<Outcome> {
        UnitOfWork(tenantId: tenantId, changes: { _ in [] }, body: body)
    }
}
