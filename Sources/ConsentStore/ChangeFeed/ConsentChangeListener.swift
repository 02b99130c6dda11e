import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// Keeps the caches (consent states, live API keys) in step with every instance's writes. On one pooled
/// connection, for as long as it lives, it LISTENs for wake-ups and key revocations and reads the change log
/// (`consent_change_log`, migration 0009) when woken and at least every `poll`; the caches answer only while it
/// does. A lost connection turns them off (and empties them) until it is back, because what was written meanwhile
/// is not replayed into an emptied cache.
public struct ConsentChangeListener: Sendable {
    let client: PostgresClient
    let cache: ConsentStateCache?
    let keys: APIKeyCache?
    let catalogue: CatalogueCache?

    public init(
        client: PostgresClient, cache: ConsentStateCache?, keys: APIKeyCache? = nil, catalogue: CatalogueCache? = nil
    ) {
        self.client = client
        self.cache = cache
        self.keys = keys
        self.catalogue = catalogue
    }

    func setListening(_ listening: Bool) {
        cache?.setListening(listening)
        keys?.setListening(listening)
        catalogue?.setListening(listening)
    }

    /// Listens until cancelled, reconnecting after `retry` when the connection fails. `poll` bounds how late a
    /// change whose wake-up was lost (its writer crashed between commit and NOTIFY) reaches this instance.
    public func run(retry: Duration = .seconds(1), poll: Duration = .seconds(1), logger: Logger) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: ConsentChange.channel) { notifications in
                        try await follow(notifications, on: connection, poll: poll, logger: logger)
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

    /// Reads the log from now on, the caches answering, until the connection ends or the task is cancelled.
    private func follow(
        _ notifications: PostgresNotificationSequence, on connection: PostgresConnection, poll: Duration,
        logger: Logger
    ) async throws {
        let start = try await Self.read(since: nil, on: connection, logger: logger).horizon
        // Everything committed before that first read is in whatever the emptied cache reads from now on.
        setListening(true)
        defer { setListening(false) }
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await notification in notifications {
                    if let revocation = KeyRevocation(payload: notification.payload) {
                        keys?.revoke(keyId: revocation.keyId)
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
                var cursor = ChangeLogCursor(horizon: start)
                for await _ in wakes {
                    let batch = try await Self.read(since: cursor.horizon, on: connection, logger: logger)
                    for change in cursor.advance(rows: batch.rows, horizon: batch.horizon) {
                        switch change {
                        case .subject(let change): cache?.invalidate(change.key, position: change.position)
                        case .catalogue(let tenant, let position): catalogue?.invalidate(tenant, position: position)
                        }
                    }
                }
            }
            // The first task to end (the connection closed, or a read failed) ends the others.
            try await group.next()
            group.cancelAll()
        }
    }

    /// The notification sequence finished: the connection is gone.
    struct FeedEnded: Error {}

    /// Rows written at or after `horizon` (none when nil) and the horizon for the next read.
    static func read(
        since horizon: Int64?, on connection: PostgresConnection, logger: Logger
    ) async throws -> (rows: [ChangeLogCursor.Row], horizon: Int64) {
        let result = try await connection.heldQuery(
            """
            SELECT horizon, change_position, tenant_id, channel, blind_index, written_by
            FROM app_changes_since(\(horizon))
            """, logger: logger)
        var next: Int64?
        var rows: [ChangeLogCursor.Row] = []
        for try await (xmin, position, tenant, channelText, index, writtenBy) in result.decode(
            (Int64, Int64?, UUID?, String?, ByteBuffer?, Int64?).self)
        {
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
