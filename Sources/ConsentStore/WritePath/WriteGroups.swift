import Foundation
import Logging
import PostgresNIO

/// The writes that are made in groups (`GroupCommit`), each group one statement on one pooled connection under one
/// write slot.
///
/// Why: an opt-in's database work is about twenty PL/pgSQL statements, each with its row-level security and
/// foreign-key probes, and under load opt-ins queued on that CPU rather than on the commit (docs/benchmarks.md).
/// One statement for a group pays what a statement costs to start once for all its writes.
public struct WriteGroups: Sendable {
    /// Opt-ins of people not yet held (`app_record_new_opt_ins`).
    let newOptIns: GroupCommit<NewOptIn, NewOptInAnswer>

    /// At most this many opt-ins in one statement; two groups of a tenant run at once, so that one is being
    /// written while the other waits for its commit to reach the disk.
    static let largestGroup = 64
    static let concurrentGroups = 2

    init(client: PostgresClient, writeSlots: WriteSlots) {
        newOptIns = GroupCommit(largestGroup: Self.largestGroup, concurrentGroups: Self.concurrentGroups) {
            tenantId, items, logger in
            try await writeSlots.acquire()
            defer { writeSlots.release() }
            return try await client.withRequestConnection { connection in
                try await ConsentLedger.recordNewOptIns(items, tenantId: tenantId, on: connection, logger: logger)
            }
        }
    }
}
