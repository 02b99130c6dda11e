import ConsentCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Keeps the caches (consent states, live API keys, catalogues) in step with every instance's writes. On a
/// connection of its own, outside the request pool (`DedicatedConnector`), it LISTENs for wake-ups and key
/// revocations and reads the change log (`consent_change_log`, migration 0009) when woken and at least every
/// `poll`. The caches answer only while it proves that both still work (`FeedFreshness`): a heartbeat NOTIFY sent
/// from a second connection every `heartbeat` must come back, and log reads must complete; the caches stop
/// answering `freshness` after the older proof. A lost or silent connection turns them off (and empties them) until it is
/// back, because what was written meanwhile is not replayed into an emptied cache.
public struct ConsentChangeListener: Sendable {
    let connector: DedicatedConnector
    let cache: ConsentStateCache?
    let keys: APIKeyCache?
    let catalogue: CatalogueCache?

    public init(
        connector: DedicatedConnector, cache: ConsentStateCache?, keys: APIKeyCache? = nil,
        catalogue: CatalogueCache? = nil
    ) {
        self.connector = connector
        self.cache = cache
        self.keys = keys
        self.catalogue = catalogue
    }

    func setListening(_ listening: Bool, freshUntil: UInt64 = 0) {
        cache?.setListening(listening, freshUntil: freshUntil)
        keys?.setListening(listening, freshUntil: freshUntil)
        catalogue?.setListening(listening, freshUntil: freshUntil)
    }

    func extendFreshness(until time: UInt64) {
        cache?.extendFreshness(until: time)
        keys?.extendFreshness(until: time)
        catalogue?.extendFreshness(until: time)
    }

    /// Listens until cancelled, reconnecting after `retry` when the connection fails or goes quiet. `poll` bounds
    /// how late a change whose wake-up was lost (its writer crashed between commit and NOTIFY) reaches this
    /// instance; `freshness` how long the caches answer after the feed last proved itself (docs/architecture.md).
    public func run(
        retry: Duration = .seconds(1), poll: Duration = .seconds(1), heartbeat: Duration = .seconds(1),
        freshness: Duration = .seconds(5), logger: Logger
    ) async {
        while !Task.isCancelled {
            do {
                try await connector.withConnection(role: "listener", logger: logger) { connection in
                    try await connection.listen(on: ConsentChange.channel) { notifications in
                        try await follow(
                            notifications, on: connection, poll: poll, heartbeat: heartbeat, freshness: freshness,
                            logger: logger)
                    }
                }
            } catch is CancellationError {
                break
            } catch {
                logger.warning(
                    "check cache: change feed lost; checks read the database until it is back",
                    metadata: ["error": "\(String(reflecting: type(of: error)))"])
            }
            setListening(false)
            try? await Task.sleep(for: retry)
        }
        setListening(false)
    }

    /// Reads the log from now on, the caches answering while the feed proves itself, until the connection ends,
    /// goes quiet for longer than `freshness`, or the task is cancelled.
    private func follow(
        _ notifications: PostgresNotificationSequence, on connection: PostgresConnection, poll: Duration,
        heartbeat: Duration, freshness bound: Duration, logger: Logger
    ) async throws {
        let firstRead = FeedClock.now()
        let start = try await Self.read(since: nil, on: connection, logger: logger).horizon
        let nanoseconds =
            UInt64(bound.components.seconds) * 1_000_000_000
            + UInt64(bound.components.attoseconds / 1_000_000_000)
        let proofs = FeedProofs(FeedFreshness(bound: nanoseconds))
        _ = proofs.record { $0.readCompleted(startedAt: firstRead) }
        // Everything committed before that first read is in whatever the emptied cache reads from now on; it
        // answers once the first heartbeat comes back.
        setListening(true, freshUntil: 0)
        defer { setListening(false) }
        let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await notification in notifications {
                    if let revocation = KeyRevocation(payload: notification.payload) {
                        keys?.revoke(keyId: revocation.keyId)
                    } else if let beat = Heartbeat(payload: notification.payload) {
                        if beat.nonce == nonce {
                            extendFreshness(until: proofs.record { $0.heard(beat: beat.sequence) })
                            // A read follows each heartbeat, so reads prove themselves as often, whatever `poll` is.
                            wake.yield()
                        }
                    } else {
                        wake.yield()
                    }
                }
                try Task.checkCancellation()
                throw FeedEnded()
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: poll)
                    wake.yield()
                }
            }
            group.addTask {
                // From another session, as every other instance's writes notify: a heartbeat that comes back proves
                // the path their notifications take. A connection of its own, not the request pool's, so that a
                // pool saturated by requests does not silence the heartbeat and turn the caches off when they are
                // needed most. A failed send is simply not heard; a lost connection is opened again.
                while true {
                    do {
                        try await connector.withConnection(role: "heartbeat", logger: logger) { sender in
                            while true {
                                var sequence: UInt64 = 0
                                _ = proofs.record { sequence = $0.nextBeat(at: FeedClock.now()) }
                                let beat = Heartbeat(nonce: nonce, sequence: sequence)
                                _ = try await sender.heldQuery(
                                    "SELECT pg_notify(\(ConsentChange.channel), \(beat.payload))", within: bound,
                                    logger: logger)
                                try await Task.sleep(for: heartbeat)
                            }
                        }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        try await Task.sleep(for: heartbeat)
                    }
                }
            }
            group.addTask {
                // Quiet for longer than the bound: the caches stopped answering by themselves already; ending the
                // connection empties them and starts again on a fresh one.
                let grace = FeedClock.now() + nanoseconds
                while true {
                    try await Task.sleep(for: .milliseconds(250))
                    let now = FeedClock.now()
                    if now > grace, now >= proofs.record({ _ in }) { throw FeedWentQuiet() }
                }
            }
            group.addTask {
                var cursor = ChangeLogCursor(horizon: start)
                for await _ in wakes {
                    let started = FeedClock.now()
                    let batch = try await Self.read(since: cursor.horizon, on: connection, logger: logger)
                    for change in cursor.advance(rows: batch.rows, horizon: batch.horizon) {
                        switch change {
                        case .subject(let change): cache?.invalidate(change.key, position: change.position)
                        case .catalogue(let tenant, let position): catalogue?.invalidate(tenant, position: position)
                        }
                    }
                    extendFreshness(until: proofs.record { $0.readCompleted(startedAt: started) })
                }
            }
            // The first task to end (the connection closed or went quiet, or a read failed) ends the others. A read
            // waiting on a silent connection ends only when the connection does, so it is closed first.
            defer { connection.closeNow() }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Neither a heartbeat nor a log read came back within the freshness bound.
    struct FeedWentQuiet: Error {}

    /// One connection's proofs, shared by the tasks that make them.
    private final class FeedProofs: Sendable {
        private let freshness: Mutex<FeedFreshness>

        init(_ freshness: FeedFreshness) { self.freshness = Mutex(freshness) }

        /// Applies `event` and answers the caches' new `freshUntil`.
        func record(_ event: (inout FeedFreshness) -> Void) -> UInt64 {
            freshness.withLock { freshness in
                event(&freshness)
                return freshness.freshUntil
            }
        }
    }

    /// The notification sequence finished: the connection is gone.
    struct FeedEnded: Error {}

    /// Rows written at or after `horizon` (none when nil) and the horizon for the next read.
    static func read(
        since horizon: Int64?, on connection: PostgresConnection, logger: Logger
    ) async throws -> (rows: [ChangeLogCursor.Row], horizon: Int64) {
        let result = try await connection.closeSafeQuery(
            """
            SELECT horizon, change_position, tenant_id, channel, blind_index, written_by
            FROM app_changes_since(\(horizon))
            """, logger: logger)
        var next: Int64?
        var rows: [ChangeLogCursor.Row] = []
        for row in result.rows {
            let (xmin, position, tenant, channelText, index, writtenBy) = try row.decode(
                (Int64, Int64?, UUID?, String?, ByteBuffer?, Int64?).self)
            next = xmin
            guard let position, let tenant, let channelText, let writtenBy else { continue }
            guard let index else {
                guard channelText == CatalogueCache.changeChannel else { throw MalformedRow() }
                rows.append(
                    ChangeLogCursor.Row(change: .catalogue(tenantId: tenant, position: position), writtenBy: writtenBy))
                continue
            }
            guard let channel = MessageChannel(rawValue: channelText), index.readableBytes == 32 else {
                throw MalformedRow()
            }
            let key = ConsentStateCache.Key(
                tenantId: tenant, channel: channel, blindIndex: Array(index.readableBytesView))
            rows.append(
                ChangeLogCursor.Row(change: .subject(ConsentChange(key: key, position: position)), writtenBy: writtenBy)
            )
        }
        guard let next else { throw MalformedRow() }
        return (rows, next)
    }

    /// A row the schema should have refused: the feed stops (and the caches with it) rather than skip a change.
    struct MalformedRow: Error {}
}
