/// Where a listener is in the change log (`consent_change_log`, migration 0009), and which rows it has already
/// applied. Pure, so that its rules are tested apart from the database.
///
/// Positions are taken before their transactions commit, so they commit out of order and a reader cannot resume
/// from the highest position it saw. It resumes instead from its horizon: the oldest transaction still running when
/// it last read. Every row it could not see then was written by a transaction at or after that horizon, so reading
/// `written_by >= horizon` again finds all of them, and some rows it has seen; `seen` drops those, so a subject is
/// not invalidated again (and its cached state dropped again) on every read while a long transaction holds the
/// horizon back.
struct ChangeLogCursor: Sendable, Equatable {
    /// One row of the log as `app_changes_since` returns it.
    struct Row: Sendable, Equatable {
        let change: FeedChange
        /// The writing transaction's id (xid8).
        let writtenBy: Int64
    }

    /// The transaction id to read from next.
    private(set) var horizon: Int64
    /// The positions already applied, with their writers' transaction ids, for the rows the next read returns again.
    private(set) var seen: [Int64: Int64] = [:]

    /// Starts at the horizon of a first read, which needs none of the rows before it.
    init(horizon: Int64) { self.horizon = horizon }

    /// Takes one read's rows and the horizon it reported, and answers the changes not applied before, in position
    /// order.
    mutating func advance(rows: [Row], horizon next: Int64) -> [FeedChange] {
        var fresh: [FeedChange] = []
        for row in rows where seen[row.change.position] == nil {
            seen[row.change.position] = row.writtenBy
            fresh.append(row.change)
        }
        horizon = next
        seen = seen.filter { $0.value >= next }
        return fresh.sorted { $0.position < $1.position }
    }
}
