import ConsentStore
import ConsentTesting
import Foundation
import PostgresNIO
import Synchronization
import Testing

/// A leader whose lock connection the server closes (a failover, an operator's `pg_terminate_backend`) notices,
/// leads again on a new connection, and still stops when asked.
@Suite struct LeaderElectedServiceTests {
    final class Passes: Sendable {
        let count = Mutex(0)
        let stopped = Mutex(false)
    }

    /// Polls up to a minute; the polls bound a hang, they assert no time.
    func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<600 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    @Test func aLeaderWhoseConnectionIsKilledLeadsAgainAndStops() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let holder = """
            SELECT l.pid FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        try await database.withClient(\.app) { client throws in
            let passes = Passes()
            let service = LeaderElectedService(
                connector: DedicatedConnector(url: database.app), lock: .retention, interval: .milliseconds(200),
                logger: logger
            ) { _ in passes.count.withLock { $0 += 1 } }
            let running = Task {
                await service.run()
                passes.stopped.withLock { $0 = true }
            }
            #expect(try await eventually { passes.count.withLock { $0 } >= 2 })
            let first = try await database.count(holder)
            #expect(first > 0, "the leader holds its lock")
            _ = try await database.count("SELECT count(pg_terminate_backend(pid))::int8 FROM (\(holder)) h")
            let afterKill = passes.count.withLock { $0 }
            #expect(
                try await eventually {
                    let now = try await database.count(holder)
                    return now > 0 && now != first && passes.count.withLock { $0 } >= afterKill + 2
                }, "a new connection holds the lock and the passes go on")
            running.cancel()
            #expect(try await eventually { passes.stopped.withLock { $0 } }, "the service stops when cancelled")
        }
    }
}
