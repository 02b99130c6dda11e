import ConsentCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

/// Opens the connections an instance holds for a long time outside the request pool: the change listener's and
/// each leader's lock. Held in the pool they starved it (a pool of 2 or 3 deadlocked the instance; issue 21,
/// finding 3), and a pooled connection cannot carry TCP keepalive, which these need most: they wait for the server,
/// and a peer that vanished without a FIN would keep them waiting for the kernel's retransmission limit.
///
/// Each is named `<pool's application name>-<role>` in `pg_stat_activity`, so an operator (and the chaos test's
/// proxy) can tell the listener's connection from the pool's.
public struct DedicatedConnector: Sendable {
    let url: DatabaseURL
    let applicationName: String
    let connectTimeout: TimeAmount

    public init(
        url: DatabaseURL, applicationName: String = PostgresClient.Configuration.uniqueApplicationName(),
        connectTimeout: Duration = .seconds(5)
    ) {
        self.url = url
        self.applicationName = applicationName
        self.connectTimeout = TimeAmount(connectTimeout)
    }

    /// Runs `body` on a new connection, closed when `body` ends, fails, or its task is cancelled: cancellation
    /// closes the connection, so a statement waiting on a silent network ends with it instead of holding the
    /// instance's shutdown (postgres-nio does not cancel a running query itself).
    public func withConnection<Result: Sendable>(
        role: String, logger: Logger, _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await open(role: role, logger: logger)
        do {
            let result = try await withTaskCancellationHandler {
                try await body(connection)
            } onCancel: {
                connection.closeNow()
            }
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    func open(role: String, logger: Logger) async throws -> PostgresConnection {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        var configuration: PostgresConnection.Configuration
        switch url.endpoint {
        case .unixSocket(let path):
            configuration = .init(
                unixSocketPath: path, username: url.username, password: url.password, database: url.database)
        case .tcp(let host, let port):
            let channel = try await Self.keepAliveBootstrap(on: eventLoop, connectTimeout: connectTimeout)
                .connect(host: host, port: port).get()
            configuration = .init(
                establishedChannel: channel, tls: try url.postgresTLS(), username: url.username, password: url.password,
                database: url.database)
            configuration.options.tlsServerName = host
        }
        configuration.options.connectTimeout = connectTimeout
        configuration.options.additionalStartupParameters = [("application_name", "\(applicationName)-\(role)")]
        return try await PostgresConnection.connect(
            on: eventLoop, configuration: configuration, id: Int.random(in: 1...Int.max), logger: logger
        ).get()
    }

    /// TCP keepalive after 10 s idle, probed every 5 s, given up after 3 unanswered probes; and no byte left
    /// unacknowledged for more than 20 s: a partition ends the connection in about 25 s rather than 15 minutes.
    private static func keepAliveBootstrap(on eventLoop: any EventLoop, connectTimeout: TimeAmount) -> ClientBootstrap {
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
        #if os(Linux)
            bootstrap =
                bootstrap
                .channelOption(tcpOption(TCP_KEEPIDLE), value: 10)
                .channelOption(tcpOption(TCP_KEEPINTVL), value: 5)
                .channelOption(tcpOption(TCP_KEEPCNT), value: 3)
                .channelOption(tcpOption(Int32(TCP_USER_TIMEOUT)), value: 20_000)
        #endif
        return bootstrap
    }

    #if os(Linux)
        private static func tcpOption(_ name: Int32) -> ChannelOptions.Types.SocketOption {
            ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name))
        }
    #endif
}

extension DatabaseURL {
    func postgresTLS() throws -> PostgresConnection.Configuration.TLS {
        switch tls {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }
}

extension PostgresConnection {
    /// Closes at once, without waiting: the caller is ending the connection's use, not waiting for its end.
    func closeNow() {
        let _: EventLoopFuture<Void> = close()
    }
}
