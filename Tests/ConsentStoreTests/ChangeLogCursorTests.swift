import ConsentCore
import Foundation
import Testing

@testable import ConsentStore

/// The change log's reading rules, apart from the database: every change once, whatever order the writers commit in.
@Suite struct ChangeLogCursorTests {
    func row(_ position: Int64, by writer: Int64) -> ChangeLogCursor.Row {
        ChangeLogCursor.Row(
            change: .subject(ConsentChange(key: ConsentStateCacheTests.key(UInt8(position % 200)), position: position)),
            writtenBy: writer)
    }

    @Test func aFirstReadAppliesWhatItFindsInPositionOrder() {
        var cursor = ChangeLogCursor(horizon: 100)
        let fresh = cursor.advance(rows: [row(7, by: 102), row(5, by: 101), row(6, by: 103)], horizon: 101)
        #expect(fresh.map(\.position) == [5, 6, 7])
        #expect(cursor.horizon == 101)
    }

    @Test func rowsReadAgainBehindAHeldHorizonAreNotAppliedTwice() {
        var cursor = ChangeLogCursor(horizon: 100)
        // Writer 100 is still open, so the horizon stays at 100 and the next read returns 101's row again.
        #expect(cursor.advance(rows: [row(2, by: 101)], horizon: 100).map(\.position) == [2])
        #expect(cursor.advance(rows: [row(2, by: 101)], horizon: 100).isEmpty)
        #expect(cursor.advance(rows: [row(2, by: 101), row(3, by: 102)], horizon: 100).map(\.position) == [3])
    }

    @Test func aLowerPositionCommittedLaterIsStillApplied() {
        // Writer 100 took position 1 before writer 101 took 2, and commits after it: a reader that resumed from
        // the highest position seen (2) would never apply 1.
        var cursor = ChangeLogCursor(horizon: 100)
        #expect(cursor.advance(rows: [row(2, by: 101)], horizon: 100).map(\.position) == [2])
        #expect(cursor.advance(rows: [row(1, by: 100), row(2, by: 101)], horizon: 102).map(\.position) == [1])
        #expect(cursor.horizon == 102)
    }

    @Test func whatTheHorizonHasPassedIsForgotten() {
        var cursor = ChangeLogCursor(horizon: 100)
        _ = cursor.advance(rows: [row(1, by: 100), row(2, by: 105), row(3, by: 110)], horizon: 100)
        #expect(cursor.seen.count == 3)
        _ = cursor.advance(rows: [row(2, by: 105), row(3, by: 110)], horizon: 106)
        #expect(cursor.seen == [3: 110], "rows by writers older than the horizon are never returned again")
        #expect(cursor.advance(rows: [], horizon: 111).isEmpty)
        #expect(cursor.seen.isEmpty)
    }
}
