import ArgumentParser
import ConsentCore
import ConsentStore
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// `consentd import`: a file of legacy opt-ins recorded from the command line, through the same store code as
/// `POST /v1/imports` (received, kept sealed, recorded chunk by chunk with its batch events), with a progress bar
/// on a terminal. Runs with the service's environment (`serve`'s DATABASE_URL, CONSENTD_MASTER_KEY and policies).
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a CSV or NDJSON file of legacy opt-ins for a tenant (run with serve's environment).")
    @Option(help: "The tenant's name.") var tenant: String
    @Option(help: "The channel: whatsapp, sms or email.") var channel: String
    @Option(help: "The id of the notice the opt-ins were given under.") var notice: String
    @Flag(help: "Check every row and record nothing.") var dryRun = false
    @Argument(help: "The file: .csv (with a header row) or .ndjson.") var file: String

    func run() async throws {
        guard let channel = MessageChannel(rawValue: channel) else {
            throw CommandFailure(
                "--channel must be one of \(MessageChannel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let noticeId = UUID(uuidString: notice) else { throw CommandFailure("--notice must be a notice id") }
        let format: ImportFormat =
            file.lowercased().hasSuffix(".ndjson") || file.lowercased().hasSuffix(".jsonl")
            ? .ndjson : .csv
        guard let handle = FileHandle(forReadingAtPath: file) else { throw CommandFailure("cannot read \(file)") }
        defer { try? handle.close() }
        let configuration: ServeConfiguration
        do {
            configuration = try ServeConfiguration.parse(environment: environment)
        } catch {
            throw CommandFailure(error.description)
        }
        let logger = Logger(label: "consentd.import")
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? nil
        let parameters = ImportParameters(channel: channel, noticeId: noticeId, format: format, dryRun: dryRun)
        let tenantName = tenant
        let progress = ProgressLine(total: nil)
        let summary = try await withRunningClient(configuration.database, maximumConnections: 4, logger: logger) {
            client in
            let database = ConsentDatabase(
                client: client, connector: DedicatedConnector(url: configuration.database),
                keyring: TenantKeyring(masterKey: configuration.masterKey, unwrapOnly: configuration.unwrapMasterKeys),
                checkCache: nil, poolSize: 4)
            let tenant: Tenant
            do {
                tenant = try await TenantStore(client: client).named(tenantName, logger: logger)
            } catch let error as TenantStoreError {
                throw CommandFailure(error.description)
            }
            let arrivals = ImportArrivals()
            let received: ImportSummary
            do {
                // An operator's import has no API key: it is recorded under an id of its own, named in the log.
                let operatorId = UUID()
                logger.info("importing", metadata: ["recorded_by": "\(operatorId.lowercased)"])
                received = try await database.imports(arrivals: arrivals).receive(
                    FileChunks(handle: handle, size: size, progress: progress), parameters: parameters,
                    recordedBy: operatorId, actor: "operator:import", tenantId: tenant.id, logger: logger)
            } catch let refusal as ImportRefusal {
                throw CommandFailure("\(refusal); nothing was imported")
            }
            progress.finishLine("received \(received.rowsRead) rows")
            guard !dryRun else { return received }
            let recording = ProgressLine(total: received.rowsRead)
            let worker = ImportWorker(
                database: database,
                ledger: ConsentLedger(
                    keyring: database.keyring, suppression: configuration.subjectRights.suppression,
                    pendingLifetime: configuration.collection.pendingConsentLifetime),
                arrivals: arrivals, logger: logger)
            try await worker.record(received.id, tenantId: tenant.id) { recording.advance(by: $0) }
            // A running server's worker may have taken the import first: then it is followed to the end here.
            let store = database.imports(arrivals: arrivals)
            var latest = received
            var shown = 0
            while true {
                guard let now = try await store.summary(received.id, tenantId: tenant.id, logger: logger) else {
                    break
                }
                latest = now
                recording.advance(by: now.rowsRecorded - shown)
                shown = now.rowsRecorded
                if now.status == .completed { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            recording.finishLine("recorded")
            return latest
        }
        print("import \(summary.id.lowercased): \(summary.status.rawValue), \(summary.rowsRead) rows")
        for outcome in ImportOutcome.allCases {
            print("  \(outcome.rawValue): \(summary.counts[outcome] ?? 0)")
        }
    }
}

/// A file read in pieces of 256 KiB, as the upload streams them.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let handle: FileHandle
    let size: Int64?
    let progress: ProgressLine

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        let size: Int64?
        let progress: ProgressLine
        var read: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let data = try handle.read(upToCount: 256 * 1024), !data.isEmpty else { return nil }
            read += Int64(data.count)
            if let size, size > 0 { progress.show("reading \(read * 100 / size)%") }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle, size: size, progress: progress) }
}

/// One line on standard error that a terminal redraws in place; nothing when standard error is not a terminal.
final class ProgressLine: Sendable {
    let total: Int?
    private let done = Mutex<Int>(0)
    private let onTerminal = isatty(STDERR_FILENO) == 1

    init(total: Int?) { self.total = total }

    func advance(by count: Int) {
        let done = self.done.withLock {
            $0 += count
            return $0
        }
        guard let total, total > 0 else { return show("\(done) rows") }
        let width = 30
        let filled = min(width, done * width / total)
        show(
            "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                + "] \(done)/\(total)")
    }

    func show(_ text: String) {
        guard onTerminal else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
    }

    func finishLine(_ text: String) {
        if onTerminal { FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text + "\n").utf8)) }
    }
}
