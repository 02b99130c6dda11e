import Synchronization
import Testing

@testable import ConsentStore

/// `WriteSlots` on its own: the reserve kept for reads, first come first served, and a waiter that gives up.
@Suite struct WriteSlotsTests {
    @Test func aQuarterOfThePoolIsKeptForReads() {
        #expect(WriteSlots.forPool(of: 20).capacity == 15)
        #expect(WriteSlots.forPool(of: 3).capacity == 2)
        #expect(WriteSlots.forPool(of: 2).capacity == 1)
        #expect(WriteSlots.forPool(of: 1).capacity == 1, "a pool of one still takes writes")
    }

    @Test func aWriteWaitsForAFreeSlotAndTheLongestWaitingGetsItFirst() async throws {
        let slots = WriteSlots(capacity: 1)
        try await slots.acquire()
        let order = Granted()
        let first = Task {
            try await slots.acquire()
            order.append(1)
            slots.release()
        }
        while slots.queued < 1 { await Task.yield() }
        let second = Task {
            try await slots.acquire()
            order.append(2)
            slots.release()
        }
        while slots.queued < 2 { await Task.yield() }
        #expect(order.values.isEmpty, "both wait while the one slot is held")
        slots.release()
        try await first.value
        try await second.value
        #expect(order.values == [1, 2])
        #expect(slots.available == 1)
    }

    @Test func aCancelledWaiterGivesUpWithoutTakingASlot() async throws {
        let slots = WriteSlots(capacity: 1)
        try await slots.acquire()
        let waiter = Task { try await slots.acquire() }
        while slots.queued < 1 { await Task.yield() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(slots.queued == 0)
        slots.release()
        #expect(slots.available == 1, "the slot went back, not to the waiter that left")
    }
}

/// The order in which waiters were granted their slot.
private final class Granted: Sendable {
    private let granted = Mutex<[Int]>([])
    func append(_ value: Int) { granted.withLock { $0.append(value) } }
    var values: [Int] { granted.withLock { $0 } }
}
