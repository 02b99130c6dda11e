import ConsentCore
import Foundation
import Logging

/// A private PostgreSQL cluster in a folder: `data/` (PGDATA), `run/` (the Unix socket) and `server.log`.
///
/// It listens on its Unix socket only, never on TCP, so parallel runs cannot collide on a port and nobody else on
/// the machine can connect (the folder is mode 0700). Local connections are trusted, which is safe for that reason.
/// PostgreSQL refuses to run as root, so under root every PostgreSQL binary runs as the `postgres` system user,
/// which then owns the folder.
public struct LocalCluster: Sendable {
    public enum Durability: Sendable {
        /// The server's defaults: what `consentd dev` uses.
        case durable
        /// fsync off: for throwaway test clusters, where only speed matters.
        case throwaway
    }

    public let baseDirectory: String
    public let superuser: String
    let binaries: PostgresBinaries
    let runAs: String?
    let durability: Durability
    let socketDirectory: String

    public var dataDirectory: String { baseDirectory + "/data" }
    public var logFile: String { baseDirectory + "/server.log" }
    static let port = 5432

    /// - Parameter baseDirectory: created if missing; must be reachable by the `postgres` user when run as root.
    public init(
        baseDirectory: String, superuser: String = "postgres", durability: Durability = .durable,
        binaries: PostgresBinaries? = nil
    ) throws {
        self.binaries = try binaries ?? PostgresBinaries.locate()
        self.baseDirectory = baseDirectory
        self.superuser = superuser
        self.durability = durability
        self.runAs = geteuid() == 0 ? "postgres" : nil
        let preferredSocketDirectory = baseDirectory + "/run"
        // sun_path holds 107 bytes; deep work trees overflow it, so fall back to a short private folder.
        if (preferredSocketDirectory + "/.s.PGSQL.\(Self.port)").utf8.count < 100 {
            socketDirectory = preferredSocketDirectory
        } else {
            socketDirectory = "/tmp/consentd-\(Array(baseDirectory.utf8).hexString.suffix(12))"
        }
        try prepareDirectories()
    }

    /// The superuser's connection over the socket.
    public var superuserURL: DatabaseURL {
        DatabaseURL(
            endpoint: .unixSocket(path: "\(socketDirectory)/.s.PGSQL.\(Self.port)"), username: superuser,
            password: nil, database: "postgres", tls: .disable)
    }

    public var isInitialized: Bool {
        FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION")
    }

    public func initializeIfNeeded(logger: Logger) throws {
        guard !isInitialized else { return }
        logger.info("initialising a private PostgreSQL cluster", metadata: ["directory": "\(dataDirectory)"])
        var arguments = [
            "-D", dataDirectory, "-U", superuser, "-E", "UTF8", "--locale=C", "--auth-local=trust",
            "--auth-host=reject",
        ]
        if durability == .throwaway { arguments.append("--no-sync") }
        try ChildProcess.run(binaries.initdb, arguments, runAs: runAs)
    }

    /// True when a postmaster is serving this data directory (ours or another process's).
    public func isRunning() -> Bool {
        let result = try? ChildProcess.runAllowingFailure(
            binaries.pgCtl, ["status", "-D", dataDirectory], runAs: runAs)
        return result?.0 == 0
    }

    public func start(logger: Logger) throws {
        var options = ["-c listen_addresses=''", "-k \(socketDirectory)", "-p \(Self.port)"]
        if durability == .throwaway {
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
            // The test suite runs many databases at once, each served by pools that keep connections for the check
            // cache's listener and the leader roles; the default 100 slots ran out under a loaded CI run, and 400
            // once writes also woke the listeners from the pool (about 400 at the suite's peak, most of them idle),
            // and 1000 once every instance also looked for webhook deliveries each second (a pool that a sequencer
            // pass and a look use at once keeps a second connection for its idle timeout). Idle slots cost little
            // shared memory; this cluster is only ever the tests'.
            options += ["-c max_connections=2000"]
        }
        logger.info("starting PostgreSQL", metadata: ["socket": "\(socketDirectory)"])
        do {
            try ChildProcess.run(
                binaries.pgCtl,
                ["start", "-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-o", options.joined(separator: " ")],
                runAs: runAs)
        } catch {
            let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?.split(separator: "\n").suffix(10)
            throw LocalClusterError.startFailed("\(error)\n\(tail?.joined(separator: "\n") ?? "")")
        }
    }

    public func stop(logger: Logger) {
        logger.info("stopping PostgreSQL", metadata: ["directory": "\(dataDirectory)"])
        _ = try? ChildProcess.runAllowingFailure(
            binaries.pgCtl, ["stop", "-D", dataDirectory, "-m", "fast", "-w", "-t", "60"], runAs: runAs)
    }

    /// Makes the folders with the modes PostgreSQL insists on, owned by whoever will run it.
    func prepareDirectories() throws {
        let fileManager = FileManager.default
        for directory in [baseDirectory, socketDirectory] {
            try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try fileManager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory)
            if let user = runAs {
                try ChildProcess.run("/bin/chown", [user, directory])
            }
        }
        if let user = runAs {
            let (status, _) = try ChildProcess.runAllowingFailure("/usr/bin/test", ["-w", baseDirectory], runAs: user)
            guard status == 0 else { throw LocalClusterError.unreachable(baseDirectory, user: user) }
        }
    }
}

public enum LocalClusterError: Error, CustomStringConvertible {
    case startFailed(String)
    case unreachable(String, user: String)

    public var description: String {
        switch self {
        case .startFailed(let detail): "PostgreSQL did not start: \(detail)"
        case .unreachable(let directory, let user):
            "the \(user) user cannot write to \(directory) (a parent folder is not open to it)"
        }
    }

    public var isUnreachable: Bool {
        if case .unreachable = self { return true }
        return false
    }
}
