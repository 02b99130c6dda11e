import ConsentCore
import ConsentTesting
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import ConsentStore

/// Issue 21, finding 9: postgres-nio 1.33 never answers a statement written into a connection whose pipeline is
/// already torn down. Each test here waited for ever before its fix (the whole suite froze on the second one).
@Suite struct ClosedConnectionTests {
    @Test func aQueryOnAClosedConnectionFailsInsteadOfWaiting() async throws {
        let database = try await TestDatabase.fresh()
        let connection = try await DedicatedConnector(url: database.app).open(role: "test", logger: database.logger)
        #expect(try await connection.closeSafeQuery("SELECT 1", logger: database.logger).rows.count == 1)
        try await connection.close()
        await #expect(throws: HeldConnectionClosed.self) {
            try await connection.closeSafeQuery("SELECT 1", logger: database.logger)
        }
        #expect(DatabaseErrors.isUnavailable(HeldConnectionClosed()))
    }

    /// A request's deadline closes its connection between two statements; the body then fails, and the
    /// transaction must not send `ROLLBACK` into the closed connection: postgres-nio's `withTransaction` did, and
    /// the request never answered (this test waited for ever with it).
    @Test func aTransactionWhoseConnectionClosesUnderItFailsAndWritesNothing() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        try await database.withClient(\.superuser) { client in
            let before = try await database.count("SELECT count(*)::int8 FROM tenants")
            let outcome = Task {
                // A grace of an hour: the answer must come from the body ending, not from being left behind.
                try await withDeadline(.milliseconds(300), grace: .seconds(3600)) {
                    try await client.withOperatorTransaction(logger: logger) { connection in
                        try await connection.query("INSERT INTO tenants (name) VALUES ('closing')", logger: logger)
                        try? await connection.closeFuture.get()
                        try await Task.sleep(for: .milliseconds(100))  // the closed pipeline is torn down by now
                        throw Abandoned()
                    }
                }
            }
            await #expect(throws: DeadlineExceeded.self) { try await outcome.value }
            #expect(try await database.count("SELECT count(*)::int8 FROM tenants") == before)
        }
    }

    /// What is not fixed at its root: a statement the body itself writes after the close is never answered. The
    /// deadline's grace leaves such a body behind, so the caller still answers.
    @Test func aStatementWrittenAfterTheCloseIsLeftBehindAfterTheGrace() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let bodyEnded = Mutex(false)
        _ = try await database.withClient(\.superuser) { client in
            await #expect(throws: DeadlineExceeded.self) {
                try await withDeadline(.milliseconds(200), grace: .milliseconds(500)) {
                    try await client.withOperatorTransaction(logger: logger) { connection in
                        defer { bodyEnded.withLock { $0 = true } }
                        try? await connection.closeFuture.get()
                        try? await Task.sleep(for: .milliseconds(100))
                        return try await connection.query("SELECT 1", logger: logger).collect().count
                    }
                }
            }
        }
        #expect(bodyEnded.withLock { $0 } == false, "the statement is still unanswered: the caller did not wait")
    }

    struct Abandoned: Error {}
}
