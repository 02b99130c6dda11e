import Foundation
import Logging
import Synchronization
import Testing

@testable import ConsentStore

@Suite struct GroupCommitQueueTests {
    @Test func aLoneWriteLeadsAGroupOfItsOwn() {
        var queue = GroupCommitQueue<Int>(largestGroup: 10, concurrentGroups: 2)
        guard case .lead(let group) = queue.arrive(1) else {
            Issue.record("a lone write waited")
            return
        }
        #expect(group == [1])
        guard case .idle = queue.finished() else {
            Issue.record("nothing was queued")
            return
        }
        #expect(queue.running == 0)
    }

    @Test func writesArrivingWhileEveryGroupRunsWaitAndGoTogether() {
        var queue = GroupCommitQueue<Int>(largestGroup: 10, concurrentGroups: 2)
        guard case .lead([1]) = queue.arrive(1), case .lead([2]) = queue.arrive(2) else {
            Issue.record("the first two writes did not each lead")
            return
        }
        for write in 3...5 {
            guard case .wait = queue.arrive(write) else {
                Issue.record("write \(write) led a third group")
                return
            }
        }
        #expect(queue.queued == [3, 4, 5])
        guard case .handOver(let next) = queue.finished() else {
            Issue.record("the queue was dropped")
            return
        }
        #expect(next == [3, 4, 5], "the oldest waiting write leads everything queued")
        #expect(queue.running == 2, "the finished group's place went to the next")
        guard case .idle = queue.finished(), case .idle = queue.finished() else {
            Issue.record("a group was handed over with nothing queued")
            return
        }
        #expect(queue.running == 0)
    }

    @Test func aGroupHoldsAtMostTheLargestNumberOfWrites() {
        var queue = GroupCommitQueue<Int>(largestGroup: 3, concurrentGroups: 1)
        _ = queue.arrive(0)
        for write in 1...7 { _ = queue.arrive(write) }
        var groups: [[Int]] = []
        while case .handOver(let group) = queue.finished() { groups.append(group) }
        #expect(groups == [[1, 2, 3], [4, 5, 6], [7]])
        #expect(queue.running == 0)
    }
}

/// Drives `GroupCommit` with a runner that holds each group until the test lets it go.
@Suite struct GroupCommitTests {
    /// The groups the runner was given, and a gate per group.
    final class HeldRunner: Sendable {
        private let state = Mutex<(groups: [[Int]], gates: [CheckedContinuation<Void, Never>])>(([], []))

        var groups: [[Int]] { state.withLock { $0.groups } }

        func run(_ items: [Int]) async -> [String] {
            await withCheckedContinuation { gate in
                state.withLock { state in
                    state.groups.append(items)
                    state.gates.append(gate)
                }
            }
            return items.map { "answer \($0)" }
        }

        /// Lets the oldest held group finish.
        func releaseOne() -> Bool {
            let gate = state.withLock { $0.gates.isEmpty ? nil : $0.gates.removeFirst() }
            gate?.resume()
            return gate != nil
        }
    }

    func until(_ condition: @Sendable () -> Bool) async throws {
        for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
        #expect(condition())
    }

    @Test func waitingWritesRunAsOneGroupLedByTheOldestAndEachGetsItsOwnAnswer() async throws {
        let runner = HeldRunner()
        let commit = GroupCommit<Int, String>(largestGroup: 10, concurrentGroups: 1) { _, items, _, _ in
            await runner.run(items)
        }
        let tenant = UUID()
        let logger = Logger(label: "test")
        try await withThrowingTaskGroup(of: (Int, String).self) { tasks in
            tasks.addTask { (1, try await commit.submit(1, tenantId: tenant, expiry: nil, logger: logger)) }
            try await until { runner.groups.count == 1 }
            for write in 2...4 {
                tasks.addTask { (write, try await commit.submit(write, tenantId: tenant, expiry: nil, logger: logger)) }
            }
            // Writes 2 to 4 are queued behind the running group; none has a runner call of its own.
            try await Task.sleep(for: .milliseconds(100))
            #expect(runner.groups == [[1]])
            #expect(runner.releaseOne())
            try await until { runner.groups.count == 2 }
            #expect(runner.groups[1].sorted() == [2, 3, 4])
            #expect(runner.releaseOne())
            var answers: [Int: String] = [:]
            for try await (write, answer) in tasks { answers[write] = answer }
            #expect(answers == [1: "answer 1", 2: "answer 2", 3: "answer 3", 4: "answer 4"])
        }
        #expect(runner.groups.count == 2)
    }

    @Test func tenantsAreGroupedApart() async throws {
        let runner = HeldRunner()
        let commit = GroupCommit<Int, String>(largestGroup: 10, concurrentGroups: 1) { _, items, _, _ in
            await runner.run(items)
        }
        let logger = Logger(label: "test")
        try await withThrowingTaskGroup(of: String.self) { tasks in
            tasks.addTask { try await commit.submit(1, tenantId: UUID(), expiry: nil, logger: logger) }
            tasks.addTask { try await commit.submit(2, tenantId: UUID(), expiry: nil, logger: logger) }
            try await until { runner.groups.count == 2 }
            #expect(runner.releaseOne() && runner.releaseOne())
            for try await _ in tasks {}
        }
        #expect(runner.groups.map(\.count) == [1, 1], "another tenant's write did not wait for the first's group")
    }

    @Test func aGroupRunsUntilTheLatestDeadlineOfItsWritesOrWithoutOneIfAWriteHasNone() async throws {
        let gate = HeldRunner()
        let seen = Mutex<[ContinuousClock.Instant?]>([])
        let commit = GroupCommit<Int, String>(largestGroup: 10, concurrentGroups: 1) { _, items, expiry, _ in
            seen.withLock { $0.append(expiry) }
            return await gate.run(items)
        }
        let tenant = UUID()
        let logger = Logger(label: "test")
        let now = ContinuousClock.now
        let expiries: [Int: ContinuousClock.Instant?] = [
            1: now + .seconds(1), 2: now + .seconds(5), 3: now + .seconds(9), 4: now + .seconds(2), 5: nil,
        ]
        try await withThrowingTaskGroup(of: String.self) { tasks in
            tasks.addTask { try await commit.submit(1, tenantId: tenant, expiry: expiries[1]!, logger: logger) }
            try await until { gate.groups.count == 1 }
            for write in 2...3 {
                tasks.addTask {
                    try await commit.submit(write, tenantId: tenant, expiry: expiries[write]!, logger: logger)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            #expect(gate.releaseOne())
            try await until { gate.groups.count == 2 }
            for write in 4...5 {
                tasks.addTask {
                    try await commit.submit(write, tenantId: tenant, expiry: expiries[write]!, logger: logger)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            #expect(gate.releaseOne())
            try await until { gate.groups.count == 3 }
            #expect(gate.releaseOne())
            for try await _ in tasks {}
        }
        #expect(seen.withLock { $0 } == [now + .seconds(1), now + .seconds(9), nil])
    }

    struct Refused: Error {}

    @Test func aGroupThatFailsFailsEveryWriteInItAndTheNextGroupStillRuns() async throws {
        let calls = Mutex(0)
        let gate = HeldRunner()
        let commit = GroupCommit<Int, String>(largestGroup: 10, concurrentGroups: 1) { _, items, _, _ in
            let call = calls.withLock { calls in
                calls += 1
                return calls
            }
            if call == 1 { _ = await gate.run(items) }
            if call == 2 { throw Refused() }
            return items.map { "answer \($0)" }
        }
        let tenant = UUID()
        let logger = Logger(label: "test")
        var outcomes: [Int: Bool] = [:]
        await withTaskGroup(of: (Int, Bool).self) { tasks in
            tasks.addTask { (1, (try? await commit.submit(1, tenantId: tenant, expiry: nil, logger: logger)) != nil) }
            try? await until { gate.groups.count == 1 }
            for write in 2...3 {
                tasks.addTask {
                    (write, (try? await commit.submit(write, tenantId: tenant, expiry: nil, logger: logger)) != nil)
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
            _ = gate.releaseOne()
            for await (write, answered) in tasks { outcomes[write] = answered }
        }
        #expect(outcomes == [1: true, 2: false, 3: false])
        // The queue is idle again: a new write leads and is answered.
        #expect(try await commit.submit(4, tenantId: tenant, expiry: nil, logger: logger) == "answer 4")
    }
}

@Suite struct NewOptInAnswerTests {
    @Test(arguments: [
        ("CL010", NewOptInAnswer.refused(.noticeNotFound)),
        ("CL011:sms", .refused(.noticeForAnotherChannel(.sms))),
        ("CL012:a_b,c", .refused(.unknownPurposes(["a_b", "c"]))),
        ("CL013:marketing", .refused(.purposesNotInNotice(["marketing"]))),
        ("CL015", .refused(.suppressed)),
        ("retry", .retry),
    ])
    func refusalsReadAsTheSingleWriteRaisesThem(text: String, answer: NewOptInAnswer) {
        #expect(NewOptInAnswer.refusal(text) == answer)
    }

    @Test(arguments: ["", "CL011:fax", "CL011", "CL012", "CL013:", "CL015:x", "retry:1", "CL099", "cl010"])
    func anythingElseIsUnreadable(text: String) {
        #expect(NewOptInAnswer.refusal(text) == nil)
    }

    @Test func rowsAreAnsweredPerItemInOrder() throws {
        let consent = UUID()
        let rows: [NewOptInAnswer.Row] = [
            (1, "retry", nil, nil, nil, nil, nil),
            (2, nil, consent, "marketing", "granted", Date(timeIntervalSince1970: 5), 41),
            (2, nil, nil, "shipping_update", "suppressed", nil, 41),
            (3, "CL015", nil, nil, nil, nil, nil),
        ]
        let answers = try NewOptInAnswer.answers(count: 3, rows: rows)
        #expect(
            answers == [
                .retry,
                .recorded(
                    [
                        .recorded(
                            RecordedConsent(
                                id: consent, purpose: "marketing", status: .granted,
                                grantedAt: Date(timeIntervalSince1970: 5))),
                        .suppressed(purpose: "shipping_update"),
                    ], position: 41),
                .refused(.suppressed),
            ])
    }

    @Test func anItemWithoutARowOrARowWithoutAnItemIsAnError() {
        #expect(throws: UnreadableGroupRows.self) {
            try NewOptInAnswer.answers(count: 2, rows: [(1, "retry", nil, nil, nil, nil, nil)])
        }
        #expect(throws: UnreadableGroupRows.self) {
            try NewOptInAnswer.answers(count: 1, rows: [(2, "retry", nil, nil, nil, nil, nil)])
        }
        #expect(throws: UnreadableGroupRows.self) {
            try NewOptInAnswer.answers(count: 1, rows: [(1, nil, UUID(), "marketing", "granted", nil, nil)])
        }
    }
}

@Suite struct GroupedWithdrawalAnswerTests {
    @Test func refusalsReadAsTheSingleWriteRaisesThem() {
        #expect(GroupedWithdrawalAnswer.refusal("retry") == .retry)
        #expect(GroupedWithdrawalAnswer.refusal("CL012:a,b") == .refused(.unknownPurposes(["a", "b"])))
        for unreadable in ["", "CL012", "CL012:", "CL010", "retry:1"] {
            #expect(GroupedWithdrawalAnswer.refusal(unreadable) == nil, "\(unreadable)")
        }
    }

    @Test func rowsAreAnsweredPerItemInOrder() throws {
        let consent = UUID()
        let at = Date(timeIntervalSince1970: 9)
        let rows: [GroupedWithdrawalAnswer.Row] = [
            (1, nil, 7, consent, "marketing", at),
            (2, nil, 8, nil, nil, nil),
            (3, "retry", nil, nil, nil, nil),
        ]
        #expect(
            try GroupedWithdrawalAnswer.answers(count: 3, rows: rows) == [
                .withdrawn([RevokedConsent(id: consent, purpose: "marketing", revokedAt: at)], position: 7),
                .withdrawn([], position: 8),
                .retry,
            ])
        #expect(throws: UnreadableGroupRows.self) {
            try GroupedWithdrawalAnswer.answers(count: 2, rows: Array(rows.prefix(1)))
        }
    }
}
