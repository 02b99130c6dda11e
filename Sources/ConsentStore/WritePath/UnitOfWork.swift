import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// One state change as the store describes it: the tenant it belongs to, the statements that make the change and
/// append its audit events, and which subjects' cached consent state it changes. Only the store makes these;
/// `ConsentDatabase.commit` is the one thing that runs them.
public struct UnitOfWork<Outcome: Sendable>: Sendable {
    let tenantId: UUID
    let body: @Sendable (PostgresConnection, Logger) async throws -> Outcome
    let changes: @Sendable (Outcome) -> [ConsentChange]

    init(
        tenantId: UUID, changes: @escaping @Sendable (Outcome) -> [ConsentChange],
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Outcome
    ) {
        self.tenantId = tenantId
        self.body = body
        self.changes = changes
    }
}

extension UnitOfWork where Outcome: ConsentStateChanging {
    init(tenantId: UUID, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Outcome) {
        self.init(tenantId: tenantId, changes: { $0.changes }, body)
    }
}

/// An outcome that names the subjects whose consent state it changed (none, for a write that changed nothing a
/// check reads).
public protocol ConsentStateChanging: Sendable {
    var changes: [ConsentChange] { get }
}
