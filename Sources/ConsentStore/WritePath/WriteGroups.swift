import Foundation
import Logging
import PostgresNIO

/// The writes that are made in groups (`GroupCommit`), each group one statement on one pooled connection under one
/// write slot.
///
/// Why: an opt-in's database work was about twenty PL/pgSQL statements, each with its row-level security and
/// foreign-key probes, and under load opt-ins queued on that CPU rather than on the commit (docs/benchmarks.md).
/// One statement for a group pays what a statement costs to start once for all its writes.
public struct WriteGroups: Sendable {
    /// Opt-ins of people not yet held (`app_record_new_opt_ins`).
    let newOptIns: GroupCommit<NewOptIn, NewOptInAnswer>

    /// At most this many opt-ins in one statement.
    static let largestGroup = 64
    /// One group of a tenant at a time. Measured with 16 clients (`scripts/bench`): with two or four at once, a
    /// write that arrived while a slot was free ran alone, half the statements carried one opt-in each, and the
    /// service recorded 840–930 and 450–740 opt-ins a second; with one, the writes that arrive during a
    /// statement all wait for the next, and it recorded 1,180–1,260.
    static let concurrentGroups = 1

    /// A group's statement runs in a task of its own, so that the leading request's client hanging up does not
    /// fail the other writes in it, under what is left of the leading request's deadline (`deadline` outside a
    /// request), which closes its connection as it would the request's own (`withDeadline`).
    init(client: PostgresClient, writeSlots: WriteSlots, deadline: Duration) {
        newOptIns = GroupCommit(largestGroup: Self.largestGroup, concurrentGroups: Self.concurrentGroups) {
            tenantId, items, logger in
            let remaining = DeadlineConnections.remaining ?? deadline
            return try await Task.detached {
                try await withDeadline(remaining) {
                    try await writeSlots.acquire()
                    defer { writeSlots.release() }
                    return try await client.withRequestConnection { connection in
                        try await ConsentLedger.recordNewOptIns(
                            items, tenantId: tenantId, on: connection, logger: logger)
                    }
                }
            }.value
        }
    }
}
