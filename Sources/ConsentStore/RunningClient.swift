import ConsentCore
import Logging
import PostgresNIO

/// Runs a pool for the length of `body`: what one-shot commands (migrate, tenants, keys) and start-up checks need.
public func withRunningClient<Result: Sendable>(
    _ url: DatabaseURL, maximumConnections: Int = 4, logger: Logger,
    _ body: @Sendable (PostgresClient) async throws -> Result
) async throws -> Result {
    // The body may ask for a connection a moment before run() starts; the pool then logs a harmless warning.
    // Failures that matter reach the body as thrown errors, so the pool's own log is kept to errors.
    var backgroundLogger = logger
    backgroundLogger.logLevel = max(logger.logLevel, .error)
    let client = PostgresClient(url: url, maximumConnections: maximumConnections, logger: backgroundLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
