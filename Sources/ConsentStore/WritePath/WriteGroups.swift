import Foundation
import Logging
import PostgresNIO

/// The writes that are made in groups (`GroupCommit`), each group one statement on one pooled connection under one
/// write slot.
///
/// Why: an opt-in's database work was about twenty PL/pgSQL statements, each with its row-level security and
/// foreign-key probes, and under load opt-ins queued on that CPU rather than on the commit (docs/benchmarks.md);
/// a withdrawal's, about ten. One statement for a group pays what a statement costs to start once for all its
/// writes.
public struct WriteGroups: Sendable {
    /// Opt-ins of people not yet held (`app_record_new_opt_ins`).
    let newOptIns: GroupCommit<NewOptIn, NewOptInAnswer>
    /// Withdrawals (`app_record_withdrawals`).
    let withdrawals: GroupCommit<GroupedWithdrawal, GroupedWithdrawalAnswer>

    /// At most this many writes in one statement.
    static let largestGroup = 64
    /// One group of a kind and tenant at a time. Measured with 16 clients sending opt-ins (docs/benchmarks.md):
    /// with two or four at once, a write that arrived while a slot was free ran alone, half the statements carried
    /// one opt-in each, and the service recorded 840–930 and 450–740 opt-ins a second; with one, the writes that
    /// arrive during a statement all wait for the next, and it recorded 1,180–1,260.
    static let concurrentGroups = 1

    /// A group's statement runs in a task of its own, so that the leading request's client hanging up does not
    /// fail the other writes in it, under the latest of its writes' request deadlines (`deadline` from its start
    /// if one came from outside a request), which closes its connection as it would a request's own
    /// (`withDeadline`).
    init(client: PostgresClient, writeSlots: WriteSlots, deadline: Duration) {
        newOptIns = Self.groups(client: client, writeSlots: writeSlots, deadline: deadline) {
            items, tenantId, connection, logger in
            try await ConsentLedger.recordNewOptIns(items, tenantId: tenantId, on: connection, logger: logger)
        }
        withdrawals = Self.groups(client: client, writeSlots: writeSlots, deadline: deadline) {
            items, tenantId, connection, logger in
            try await ConsentLedger.recordWithdrawals(items, tenantId: tenantId, on: connection, logger: logger)
        }
    }

    private static func groups<Item: Sendable, Answer: Sendable>(
        client: PostgresClient, writeSlots: WriteSlots, deadline: Duration,
        statement: @escaping @Sendable ([Item], UUID, PostgresConnection, Logger) async throws -> [Answer]
    ) -> GroupCommit<Item, Answer> {
        GroupCommit(largestGroup: largestGroup, concurrentGroups: concurrentGroups) {
            tenantId, items, expiry, logger in
            let remaining = expiry.map { max(.zero, $0 - .now) } ?? deadline
            return try await Task.detached {
                try await withDeadline(remaining) {
                    try await writeSlots.acquire()
                    defer { writeSlots.release() }
                    return try await client.withRequestConnection { connection in
                        try await statement(items, tenantId, connection, logger)
                    }
                }
            }.value
        }
    }
}
