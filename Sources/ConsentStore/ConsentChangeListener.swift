import Foundation
import Logging
import PostgresNIO

/// Keeps the caches (consent states, live API keys) in step with every instance's writes: LISTENs on one pooled
/// connection for as long as it lives, and turns the caches on only while listening. A lost connection turns it off (and empties it) until LISTEN is
/// back, because notifications sent meanwhile are gone.
public struct ConsentChangeListener: Sendable {
    let client: PostgresClient
    let cache: ConsentStateCache?
    let keys: APIKeyCache?

    public init(client: PostgresClient, cache: ConsentStateCache?, keys: APIKeyCache? = nil) {
        self.client = client
        self.cache = cache
        self.keys = keys
    }

    func setListening(_ listening: Bool) {
        cache?.setListening(listening)
        keys?.setListening(listening)
    }

    /// Listens until cancelled, reconnecting after `retry` when the connection fails.
    public func run(retry: Duration = .seconds(1), logger: Logger) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: ConsentChange.channel) { notifications in
                        setListening(true)
                        defer { setListening(false) }
                        for try await notification in notifications {
                            if let change = ConsentChange(payload: notification.payload) {
                                cache?.invalidate(change.key, position: change.position)
                            } else if let revocation = KeyRevocation(payload: notification.payload) {
                                keys?.revoke(keyId: revocation.keyId)
                            } else {
                                logger.warning("check cache: ignored a malformed change notification")
                            }
                        }
                    }
                }
            } catch is CancellationError {
                break
            } catch {
                logger.warning(
                    "check cache: notification connection lost; checks read the database until it is back",
                    metadata: ["error": "\(String(reflecting: type(of: error)))"])
            }
            setListening(false)
            try? await Task.sleep(for: retry)
        }
        setListening(false)
    }
}
