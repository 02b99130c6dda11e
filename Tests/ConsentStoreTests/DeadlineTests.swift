import ConsentCore
import Foundation
import Logging
import Synchronization
import Testing

@testable import ConsentStore

/// `withDeadline` on its own: the answer in time, the cut-off, and cancellation from either side.
@Suite struct DeadlineTests {
    struct Refused: Error {}

    @Test func anAnswerInTimeIsReturnedAndAnErrorInTimeIsThrownAsItself() async throws {
        #expect(try await withDeadline(.seconds(5)) { 42 } == 42)
        await #expect(throws: Refused.self) { try await withDeadline(.seconds(5)) { throw Refused() } }
    }

    @Test func workPastTheDeadlineIsCancelledAndReportedAsExceeded() async throws {
        // Only cancellation ends the hour-long sleep: were the work not cancelled, this test would hang.
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(100)) {
                try await Task.sleep(for: .seconds(3600))
                return 0
            }
        }
    }

    @Test func cancellingTheCallerCancelsTheWorkWithoutCallingItExceeded() async throws {
        let caller = Task {
            try await withDeadline(.seconds(3600)) {
                try await Task.sleep(for: .seconds(3600))
                return 0
            }
        }
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
    }

    /// A body that ignores its cancellation (as a statement postgres-nio never answers does) is left behind once
    /// the grace period is over: the caller still answers. Before, `withDeadline` waited for it for ever.
    @Test func workThatNeverEndsIsLeftBehindAfterTheGrace() async throws {
        let stuck = Mutex<CheckedContinuation<Void, Never>?>(nil)
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(100), grace: .milliseconds(100)) {
                await withCheckedContinuation { continuation in stuck.withLock { $0 = continuation } }
                return 0
            }
        }
        // Let the left-behind body end, so the test leaves nothing suspended.
        for _ in 0..<200 where stuck.withLock({ $0 == nil }) { try await Task.sleep(for: .milliseconds(5)) }
        stuck.withLock { $0.take() }?.resume()
    }
}

/// The check path's one wait: its database read gives up at its deadline when the database is down, so a sender
/// gets a 503 to retry instead of a request that hangs while the pool keeps trying to connect.
@Suite struct ConsentLookupDeadlineTests {
    /// A database that is not there: the pool keeps trying to connect, and every wait on it is one for ever.
    static var nowhere: DatabaseURL {
        DatabaseURL(
            endpoint: .unixSocket(
                path: FileManager.default.temporaryDirectory.path + "/no-postgres-\(UUID())/.s.PGSQL.5432"),
            username: "consentd_app", password: nil, database: "consent", tls: .disable)
    }

    @Test func aReadWhileTheDatabaseIsDownEndsAtItsDeadline() async throws {
        let logger = Logger(label: "test")
        try await withRunningClient(Self.nowhere, logger: logger) { client in
            let lookup = ConsentLookup(
                client: client, keyring: TenantKeyring(masterKey: SecretBytes(Array(repeating: 7, count: 32))),
                readDeadline: .milliseconds(300))
            let key = ConsentStateCache.Key(
                tenantId: UUID(), channel: .whatsapp, blindIndex: Array(repeating: 1, count: 32))
            await #expect(throws: DeadlineExceeded.self) {
                try await lookup.read(
                    [key], channel: .whatsapp, purpose: "marketing", tenantId: key.tenantId, logger: logger)
            }
        }
    }

    /// The check routes run under no request deadline; with the caches off, their key lookup waited as long as
    /// the network did (55 s in `scripts/quiet_faults.py`'s black hole). It has a deadline of its own now.
    @Test func aKeyLookupWhileTheDatabaseIsDownEndsAtItsDeadline() async throws {
        let logger = Logger(label: "test")
        try await withRunningClient(Self.nowhere, logger: logger) { client in
            let keys = APIKeyStore(client: client, cache: APIKeyCache(capacity: 10), readDeadline: .milliseconds(300))
            await #expect(throws: DeadlineExceeded.self) {
                try await keys.authenticate(APIKeyToken.generate(), logger: logger)
            }
        }
    }
}
