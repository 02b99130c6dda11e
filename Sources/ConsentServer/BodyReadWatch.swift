import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization

/// Bounds body reads (`BodyBufferingMiddleware`): each is registered here with its connection and deadline, and a
/// sweep every half second closes the connections whose body is still arriving past it, which ends the body's
/// stream (issue 21, finding 8). A timer per request on the connection's event loop would do the same, but
/// scheduling one from the request's task wakes the loop's thread each time, a cost on the check's hot path
/// (docs/benchmarks.md); registering here is two lock-protected dictionary operations.
final class BodyReadWatch: Sendable {
    private struct Watched {
        let channel: any Channel
        let deadline: ContinuousClock.Instant
    }

    private struct State {
        var nextId: UInt64 = 0
        var watched: [UInt64: Watched] = [:]
        /// Reads the sweep ended, until their request looks.
        var expired: Set<UInt64> = []
    }

    private let state = Mutex(State())
    static let sweepInterval = Duration.milliseconds(500)

    /// Starts watching a body read on `channel` that must end within `timeout`.
    func watch(_ channel: any Channel, for timeout: Duration) -> UInt64 {
        let deadline = ContinuousClock.now + timeout
        return state.withLock { state in
            state.nextId += 1
            state.watched[state.nextId] = Watched(channel: channel, deadline: deadline)
            return state.nextId
        }
    }

    /// Stops watching; true when the sweep had already closed the read's connection.
    func end(_ id: UInt64) -> Bool {
        state.withLock { state in
            state.watched[id] = nil
            return state.expired.remove(id) != nil
        }
    }

    /// Closes the connections of the reads past their deadline at `now`.
    func sweep(now: ContinuousClock.Instant = .now) {
        let late: [any Channel] = state.withLock { state in
            var late: [any Channel] = []
            for (id, watched) in state.watched where watched.deadline <= now {
                late.append(watched.channel)
                state.watched[id] = nil
                state.expired.insert(id)
            }
            return late
        }
        for channel in late { channel.close(promise: nil) }
    }

    var watching: Int { state.withLock { $0.watched.count } }
}

/// Runs the sweeps for the life of the server.
struct BodyReadWatchService: Service {
    let watch: BodyReadWatch

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: BodyReadWatch.sweepInterval)
                watch.sweep()
            }
        }
    }
}
