import Foundation
import Synchronization

/// At most `capacity` units of work hold a pooled connection at once; the rest of the pool stays for reads.
///
/// Writes queued behind a lock (someone's `LOCK TABLE`, a long migration) each hold their connection until their
/// deadline; forty of them took all twenty, and `GET /v1/purposes`, which needs no lock, waited for a connection
/// until its own deadline (`scripts/quiet_faults.py`, scenario 3). A write waits here for a slot instead, first
/// come first served, and gives up with the request's deadline or cancellation like any other wait.
final class WriteSlots: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var free: Int
        var nextId: UInt64 = 0
        var waiting: [Waiter] = []
    }

    private let state: Mutex<State>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        state = Mutex(State(free: max(1, capacity)))
    }

    /// The slots for a pool of `poolSize`: a quarter of it (at least one connection) is kept for reads.
    static func forPool(of poolSize: Int) -> WriteSlots {
        WriteSlots(capacity: poolSize - max(1, poolSize / 4))
    }

    /// Waits for a slot; throws `CancellationError` when the task is cancelled first, holding none.
    func acquire() async throws {
        let id = state.withLock { state in
            state.nextId += 1
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let granted: Bool? = state.withLock { state in
                    // Cancelled before it queued: the cancellation handler has already looked and found nothing.
                    if Task.isCancelled { return nil }
                    if state.free > 0 {
                        state.free -= 1
                        return true
                    }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return false
                }
                switch granted {
                case true?: continuation.resume()
                case nil: continuation.resume(throwing: CancellationError())
                case false?: break
                }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Gives the slot to the longest waiting write, or back to the free count.
    func release() {
        let next: Waiter? = state.withLock { state in
            if state.waiting.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.continuation.resume()
    }

    /// Slots free right now, and writes waiting for one (for tests).
    var available: Int { state.withLock { $0.free } }
    var queued: Int { state.withLock { $0.waiting.count } }
}
