import ArgumentParser
import ConsentCore
import ConsentServer
import ConsentStore
import Foundation
import Logging
import PostgresNIO

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify, export and sequence a tenant's tamper-evident audit log.",
        subcommands: [Verify.self, Export.self, Sequence.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the tenant's log from its stored events and check every stored checkpoint.",
            discussion: """
                Checks each event's leaf hash, the stored subtree hashes, every checkpoint's root, origin and \
                Ed25519 signature, consistency between consecutive checkpoints, and that no event is missing. \
                Exits 0 when all hold; otherwise exits 1 naming the first bad seq. Each checkpoint is checked \
                against the key recorded with it, which must be one of the --public-key options (give the current \
                key and every retired one), else the key made from CONSENTD_SIGNING_KEY or one of \
                CONSENTD_RETIRED_SIGNING_KEYS; with neither (and a warning) any recorded key is accepted.
                """)

        @Option(help: "The tenant's name.") var tenant: String
        @Option(
            help: "Base64 of a 32-byte Ed25519 public key checkpoints may be signed with; repeat it for retired keys.")
        var publicKey: [String] = []

        func run() async throws {
            let pinned = try pinnedKeys()
            if pinned.isEmpty {
                FileHandle.standardError.write(
                    Data(
                        "warning: no --public-key or CONSENTD_SIGNING_KEY; checking signatures against the keys stored with the checkpoints\n"
                            .utf8))
            }
            let name = tenant
            let result = try await withOperatorDatabase { client, logger in
                let found = try await TenantStore(client: client).named(name, logger: logger)
                return try await AuditVerifier(client: client, trustedKeys: pinned)
                    .verify(tenantId: found.id, tenantName: found.name, logger: logger)
            }
            var lines = [
                "tenant              \(tenant)",
                "events checked      \(result.eventsChecked)",
                "checkpoints checked \(result.checkpointsChecked)",
                "latest checkpoint   \(result.latestCheckpointSize.map(String.init) ?? "none")",
                "waiting to sequence \(result.unsequencedEvents)",
                "signed by           "
                    + (result.signingKeys.isEmpty
                        ? "no key" : result.signingKeys.map { Data($0).base64EncodedString() }.joined(separator: ", ")),
            ]
            if let problem = result.problem {
                lines.append("result              FAILED")
                print(lines.joined(separator: "\n"))
                let at = result.firstBadSeq.map { "first bad seq \($0): " } ?? ""
                throw CommandFailure("the audit log of \(tenant) does not verify: \(at)\(problem)")
            }
            lines.append("result              ok")
            print(lines.joined(separator: "\n"))
        }

        func pinnedKeys() throws -> [[UInt8]] {
            if !publicKey.isEmpty {
                return try publicKey.map { text in
                    guard let bytes = Data(base64Encoded: text), bytes.count == 32 else {
                        throw CommandFailure("--public-key must be base64 of 32 bytes")
                    }
                    return Array(bytes)
                }
            }
            guard let current = try optionalSigner()?.publicKey else { return [] }
            do {
                return [current] + (try EnvironmentReader.retiredSigningKeys(environment))
            } catch {
                throw CommandFailure("\(error)")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a report of the tenant's audit events to standard output.",
            discussion: """
                The report lists the events covered by the latest checkpoint (within --from/--to when given) and \
                states that checkpoint. With CONSENTD_SIGNING_KEY set, events not yet sequenced are sequenced first, \
                so the report covers everything committed before it started. Memory use does not grow with the log.
                """)

        @Option(help: "The tenant's name.") var tenant: String
        @Option(help: "Only events at or after this RFC 3339 time.") var from: String?
        @Option(help: "Only events before this RFC 3339 time.") var to: String?
        @Option(help: "csv, ndjson or html.") var format: String

        func run() async throws {
            guard let reportFormat = AuditReportFormat(rawValue: format) else {
                throw CommandFailure("--format must be one of csv, ndjson, html")
            }
            let fromDate = try from.map { text in
                guard let date = RFC3339.parse(text) else { throw CommandFailure("--from must be an RFC 3339 time") }
                return date
            }
            let toDate = try to.map { text in
                guard let date = RFC3339.parse(text) else { throw CommandFailure("--to must be an RFC 3339 time") }
                return date
            }
            let signer = try optionalSigner()
            let name = tenant
            try await withOperatorDatabase { client, logger in
                let found = try await TenantStore(client: client).named(name, logger: logger)
                if let signer {
                    try await AuditSequencer(client: client, signer: signer).sequence(
                        tenantId: found.id, logger: logger)
                }
                let reader = AuditLogReader(client: client)
                guard let checkpoint = try await reader.latestCheckpoint(tenantId: found.id, logger: logger) else {
                    throw CommandFailure("the audit log of \(name) has no checkpoint yet; is a server running?")
                }
                let report = AuditReport(
                    reader: reader, tenantId: found.id, tenantName: found.name, checkpoint: checkpoint,
                    verifierKey: SignedNote.verifierKey(name: checkpoint.origin, publicKey: checkpoint.publicKey),
                    from: fromDate, to: toDate)
                try await report.write(reportFormat, logger: logger) { chunk in
                    FileHandle.standardOutput.write(Data(chunk.utf8))
                }
            }
        }
    }

    struct Sequence: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sequence waiting events now and sign checkpoints (a running server does this every second).",
            discussion: "Needs CONSENTD_SIGNING_KEY, and CONSENTD_AUDIT_ORIGIN when the server sets it.")

        @Option(help: "Only this tenant.") var tenant: String?

        func run() async throws {
            guard let signer = try optionalSigner() else {
                throw CommandFailure("CONSENTD_SIGNING_KEY is not set; it signs the checkpoints")
            }
            let name = tenant
            let started = ContinuousClock.now
            let count = try await withOperatorDatabase { client, logger in
                let sequencer = AuditSequencer(client: client, signer: signer)
                if let name {
                    let found = try await TenantStore(client: client).named(name, logger: logger)
                    return try await sequencer.sequence(tenantId: found.id, logger: logger)
                }
                return try await sequencer.sequenceAll(logger: logger)
            }
            print("sequenced \(count) events in \(ContinuousClock.now - started)")
        }
    }
}

/// The checkpoint signer the environment describes, if it names a signing key.
func optionalSigner() throws -> CheckpointSigner? {
    guard environment["CONSENTD_SIGNING_KEY"] != nil else { return nil }
    do {
        let seed = try EnvironmentReader.key32(environment, "CONSENTD_SIGNING_KEY", purpose: "Ed25519 seed")
        return try CheckpointSigner(seed: seed, originPrefix: try EnvironmentReader.auditOrigin(environment))
    } catch {
        throw CommandFailure("\(error)")
    }
}
