import Foundation
import Logging
import Synchronization

/// Writes that arrive together, run together: one statement and one commit for a group of them, per tenant
/// (`GroupCommitQueue` says who runs what). Each write's request runs in its own task as before; the task that
/// leads a group has the group's statement run for everyone in it and answers them, then hands the lead to the
/// oldest waiting write, whose task leads the next group. (`WriteGroups` runs each statement in a task of its own.)
///
/// A waiting write is not cancelled with its request: once it is queued, the group that takes it decides it, and
/// the group runs under the latest of its writes' deadlines, so a wait is bounded by a statement's.
final class GroupCommit<Item: Sendable, Answer: Sendable>: Sendable {
    /// Runs one group for one tenant and answers its items in order, one answer each. `expiry` is the latest of
    /// its writes' deadlines (nil when one has none): the group is theirs, so it may run as long as any may.
    typealias Runner =
        @Sendable (
            _ tenantId: UUID, _ items: [Item], _ expiry: ContinuousClock.Instant?, _ logger: Logger
        ) async throws -> [Answer]

    private struct Entry {
        let id: UInt64
        let item: Item
        let expiry: ContinuousClock.Instant?
    }

    private enum Turn {
        case answered(Result<Answer, any Error>)
        case lead([Entry])
    }

    private struct State {
        var nextId: UInt64 = 0
        var queues: [UUID: GroupCommitQueue<Entry>] = [:]
        var waiting: [UInt64: CheckedContinuation<Turn, any Error>] = [:]
    }

    private let state = Mutex(State())
    private let largestGroup: Int
    private let concurrentGroups: Int
    private let runner: Runner

    init(largestGroup: Int, concurrentGroups: Int, runner: @escaping Runner) {
        self.largestGroup = largestGroup
        self.concurrentGroups = concurrentGroups
        self.runner = runner
    }

    struct WrongAnswerCount: Error, CustomStringConvertible {
        let items: Int
        let answers: Int
        var description: String { "a group of \(items) writes got \(answers) answers" }
    }

    /// Queues `item` for its tenant and answers it when its group has run. `expiry` is when the write's request
    /// must be answered.
    func submit(_ item: Item, tenantId: UUID, expiry: ContinuousClock.Instant?, logger: Logger) async throws -> Answer {
        let turn: Turn = try await withCheckedThrowingContinuation { continuation in
            let group: [Entry]? = state.withLock { state in
                state.nextId += 1
                let entry = Entry(id: state.nextId, item: item, expiry: expiry)
                var queue =
                    state.queues[tenantId]
                    ?? GroupCommitQueue(largestGroup: largestGroup, concurrentGroups: concurrentGroups)
                let arrival = queue.arrive(entry)
                state.queues[tenantId] = queue
                switch arrival {
                case .lead(let group): return group
                case .wait:
                    state.waiting[entry.id] = continuation
                    return nil
                }
            }
            if let group { continuation.resume(returning: .lead(group)) }
        }
        switch turn {
        case .answered(let answer): return try answer.get()
        case .lead(let group): return try await lead(group, tenantId: tenantId, logger: logger)
        }
    }

    /// Runs `group`, answers its other writes, hands the lead on, and answers the leader's own write (the first).
    private func lead(_ group: [Entry], tenantId: UUID, logger: Logger) async throws -> Answer {
        let answers: [Result<Answer, any Error>]
        do {
            let expiries = group.map(\.expiry)
            let expiry = expiries.contains(nil) ? nil : expiries.compactMap { $0 }.max()
            let got = try await runner(tenantId, group.map(\.item), expiry, logger)
            guard got.count == group.count else { throw WrongAnswerCount(items: group.count, answers: got.count) }
            answers = got.map { .success($0) }
        } catch {
            answers = group.map { _ in .failure(error) }
        }
        let (others, next):
            (
                [(CheckedContinuation<Turn, any Error>, Result<Answer, any Error>)],
                (CheckedContinuation<Turn, any Error>, [Entry])?
            ) =
                state.withLock { state in
                    var others: [(CheckedContinuation<Turn, any Error>, Result<Answer, any Error>)] = []
                    for (entry, answer) in zip(group, answers).dropFirst() {
                        if let waiter = state.waiting.removeValue(forKey: entry.id) { others.append((waiter, answer)) }
                    }
                    var queue =
                        state.queues[tenantId]
                        ?? GroupCommitQueue(largestGroup: largestGroup, concurrentGroups: concurrentGroups)
                    let finish = queue.finished()
                    var next: (CheckedContinuation<Turn, any Error>, [Entry])?
                    switch finish {
                    case .idle:
                        if queue.running == 0 { state.queues[tenantId] = nil } else { state.queues[tenantId] = queue }
                    case .handOver(let nextGroup):
                        state.queues[tenantId] = queue
                        if let first = nextGroup.first, let waiter = state.waiting.removeValue(forKey: first.id) {
                            next = (waiter, nextGroup)
                        }
                    }
                    return (others, next)
                }
        for (waiter, answer) in others { waiter.resume(returning: .answered(answer)) }
        if let (waiter, nextGroup) = next { waiter.resume(returning: .lead(nextGroup)) }
        return try answers[0].get()
    }
}
