import Logging
import PostgresNIO

/// Wakes every instance's `ConsentChangeListener` after this instance commits a change: one payload-free NOTIFY
/// on `ConsentChange.channel`, sent after the commit and never inside the write's transaction (migration 0009 says
/// why). Announcements coalesce: however many writes commit while one NOTIFY is on its way, one more follows it.
/// The NOTIFY commits asynchronously (`synchronous_commit = off` for its own transaction): it carries no data, and
/// one lost to a crash costs the listeners at most their polling interval.
final class ChangeAnnouncer: Sendable {
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() {
        (wakes, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a NOTIFY; returns at once.
    func announce() { wake.yield() }

    /// Sends the NOTIFYs asked for until cancelled.
    func run(client: PostgresClient, logger: Logger) async {
        for await _ in wakes {
            do {
                // Leased like a request's connection, so a connection the server ended is never written to (see
                // `withRequestConnection`): a NOTIFY stuck on one would hold this loop, and the shutdown, for ever.
                _ = try await client.withRequestConnection { connection in
                    try await connection.closeSafeQuery(
                        "SELECT set_config('synchronous_commit', 'off', true), pg_notify(\(ConsentChange.channel), '')",
                        logger: logger
                    ).collect().count
                }
            } catch {
                logger.debug(
                    "change announcer: NOTIFY failed; listeners find the change at their next poll",
                    metadata: ["error": "\(String(reflecting: type(of: error)))"])
            }
        }
    }
}
