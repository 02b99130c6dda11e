import ConsentCore
import ConsentTesting
import Crypto
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// Issue 22: bulk import of legacy opt-ins, through the API, by the rules of a single opt-in.
@Suite struct ImportTests {
    struct ImportReply: Decodable {
        let id: String
        let status: String
        let rows: Int
        let rowsRecorded: Int
        let counts: [String: Int]
        let sameFileAs: String?
        let sha256: String?
        let dryRun: Bool
        let rejectedRowsUrl: String
    }

    static let granted = "+393331110001"
    static let doubleOptIn = "+393331110002"
    static let stopped = "+393331110003"
    static let objected = "+393331110004"
    static let repeated = "+393331110005"

    static func upload(
        _ api: APIClient, _ file: String, notice: String, contentType: String = "text/csv", dryRun: Bool = false
    ) async throws -> APIClient.Reply {
        var headers = api.tenant.bearer(.consentWrite)
        headers[.contentType] = contentType
        let uri = "/v1/imports?channel=whatsapp&noticeId=\(notice)" + (dryRun ? "&dryRun=true" : "")
        return try await api.client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: file)) {
            response in
            APIClient.Reply(status: response.status, headers: response.headers, body: Data(buffer: response.body))
        }
    }

    /// The import once its worker has recorded every row (the worker runs as a service of the app).
    static func finished(_ api: APIClient, _ id: String) async throws -> ImportReply {
        for _ in 0..<600 {
            let reply = try await api.call(.get, "/v1/imports/\(id)", as: .consentWrite)
            #expect(reply.status == .ok, "\(reply.text)")
            let state = try reply.decoded(ImportReply.self)
            if state.status == "completed" || state.status == "validated" { return state }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw APIClient.Unexpected("import \(id) did not finish within a minute")
    }

    static func ago(_ days: Double) -> String {
        RFC3339.format(Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - days * 86_400).rounded(.down)))
    }

    /// One row of every outcome, with the lines the report must name.
    static func everyOutcome(stopLineDate: String) -> String {
        """
        subject,purposes,collectedAt,method,pageUrl,source
        \(granted),marketing;shipping_update,\(ago(30)),,https://shop.example/2025,crm
        \(doubleOptIn),marketing,\(ago(30)),double_opt_in,,newsletter
        \(stopped),marketing,\(stopLineDate),,,crm
        \(objected),marketing,\(ago(30)),checkbox,,crm
        \(repeated),shipping_update,\(ago(20)),,,crm
        \(repeated),shipping_update,\(ago(20)),,,crm
        +39 333 not a number,marketing,\(ago(30)),,,crm
        +393331110009,loyalty_points,\(ago(30)),,,crm
        +393331110010,marketing,2999-01-01T00:00:00Z,,,crm
        "+393331110011","marketing","\(ago(10))",,"https://shop.example/a,b",crm

        """
    }

    @Test func everyOutcomeIsCountedAndReportedByLineWithoutTheIdentifier() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            // Someone who opted in and then said STOP, and someone who objected to marketing.
            #expect(try await acme.optIn(Self.stopped, purposes: ["marketing"], noticeId: notice).status == .created)
            let stop = try await acme.post(
                "/v1/interactions", as: .consentWrite,
                [
                    "subject": Self.stopped, "channel": "whatsapp", "direction": "inbound",
                    "occurredAt": RFC3339.format(Date()), "text": "STOP",
                ])
            #expect(stop.status == .created, "\(stop.text)")
            let objection = try await acme.post(
                "/v1/objections", as: .consentWrite,
                ["subjects": [["subject": Self.objected, "channel": "whatsapp"]], "scope": "marketing"])
            #expect(objection.status == .created || objection.status == .ok, "\(objection.text)")

            let file = Self.everyOutcome(stopLineDate: Self.ago(60))
            let reply = try await Self.upload(acme, file, notice: notice)
            #expect(reply.status == .accepted, "\(reply.text)")
            let accepted = try reply.decoded(ImportReply.self)
            #expect(accepted.status == "running" && accepted.rows == 10)
            let done = try await Self.finished(acme, accepted.id)
            #expect(done.rowsRecorded == 10)
            #expect(
                done.counts == [
                    "granted": 4, "pending": 0, "superseded": 1, "suppressed": 1, "duplicate": 1, "invalid": 3,
                ], "\(done.counts)")

            // The report names lines and reasons, never an identifier.
            let report = try await acme.call(.get, done.rejectedRowsUrl, as: .consentWrite)
            #expect(report.status == .ok)
            #expect(report.headers[.contentType]?.hasPrefix("text/csv") == true)
            let lines = report.text.split(separator: "\r\n").map(String.init)
            #expect(lines.first == "line,outcome,reason")
            #expect(
                lines.dropFirst().map { $0.split(separator: ",").prefix(2).joined(separator: ",") } == [
                    "4,superseded", "5,suppressed", "7,duplicate", "8,invalid", "9,invalid", "10,invalid",
                ], "\(report.text)")
            #expect(report.text.contains("E.164"))
            #expect(report.text.contains("does not cover loyalty_points"))
            #expect(report.text.contains("in the future"))
            for person in [Self.granted, Self.stopped, Self.objected, Self.repeated, "3331110009", "333 not"] {
                #expect(!report.text.contains(person))
            }

            // The checks answer as for single opt-ins.
            #expect(try await acme.check(Self.granted, purpose: "marketing").decoded(CheckReply.self).allowed)
            #expect(try await acme.check("+393331110011", purpose: "marketing").decoded(CheckReply.self).allowed)
            // A legacy double opt-in was confirmed where it was collected: imported, it is granted, the claim kept
            // as evidence; and a claimed checkbox does not pass an objection (the objected row says `checkbox`).
            #expect(try await acme.check(Self.doubleOptIn, purpose: "marketing").decoded(CheckReply.self).allowed)
            let stopped = try await acme.check(Self.stopped, purpose: "marketing").decoded(CheckReply.self)
            #expect(!stopped.allowed && stopped.reason == "consent_withdrawn")
            #expect(!(try await acme.check(Self.objected, purpose: "marketing").decoded(CheckReply.self).allowed))

            // The imported collection keeps its provenance, with the source system, as evidence.
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM collections WHERE method = 'import' AND provenance_ciphertext IS NOT NULL"
                )
                    >= 3)

            // One batch event, whose root is the Merkle root of the rows' leaves, and the log verifies.
            let events = try await AuditAPITests.allEvents(acme).filter { $0.action == "import.batch_recorded" }
            #expect(events.count == 1)
            let data = try #require(events.first?.members["data"], "\(events)")
            guard case .object(let fields) = data, case .string(let root) = fields["root"] else {
                throw APIClient.Unexpected("a batch event without a root: \(data)")
            }
            let leaves = try await database.withClient(\.superuser) { client in
                try await client.query("SELECT leaf_hash FROM import_rows ORDER BY line").collect().map {
                    Array(try $0.decode(ByteBuffer.self).readableBytesView)
                }
            }
            #expect(leaves.count == 10)
            #expect(MerkleTree.root(leaves[...]).hexString == root)
            let verification = try await acme.call(.get, "/v1/audit/verification", as: .dpo)
            #expect(try verification.decoded(VerificationReply.self).ok, "\(verification.text)")
            // The person's export proves their imported row: its leaf hash is the hash of its fields, and its
            // proof leads to the root that the batch's event (in the export too) holds.
            let export = try await acme.post(
                "/v1/subjects/export", as: .dpo, ["subject": Self.granted, "channel": "whatsapp"])
            #expect(export.status == .ok, "\(export.text)")
            guard case .object(let bundle) = try JSONValue.parse(export.text),
                case .array(let imported) = bundle["importedRows"], imported.count == 1,
                case .object(let row) = imported[0], case .string(let leafHash) = row["leafHash"],
                case .object(let proof) = row["batchProof"], case .array(let hashes) = proof["hashes"],
                case .number(let index) = proof["leafIndex"], case .number(let size) = proof["batchSize"],
                case .array(let bundleEvents) = bundle["auditEvents"]
            else { throw APIClient.Unexpected("an export without its imported row: \(export.text)") }
            #expect(row["line"] == .number(2) && row["outcome"] == .string("granted"))
            var leafFields = row
            for key in ["batch", "leafHash", "batchProof"] { leafFields[key] = nil }
            let leaf = MerkleTree.leafHash(try CanonicalJSON.serialize(.object(leafFields)))
            #expect(Data(leaf).base64EncodedString() == leafHash)
            #expect(
                MerkleTree.verifyInclusion(
                    leafHash: leaf, index: Int64(index), size: Int64(size),
                    proof: try hashes.map { value -> [UInt8] in
                        guard case .string(let text) = value, let bytes = Data(base64Encoded: text) else {
                            throw APIClient.Unexpected("a proof hash that is not base64")
                        }
                        return Array(bytes)
                    }, root: try #require([UInt8](hex: root))))
            #expect(
                bundleEvents.contains {
                    if case .object(let event) = $0 {
                        event["action"] == .string("import.batch_recorded")
                    } else {
                        false
                    }
                })

            // Personal data stays out of what an import keeps in the clear.
            #expect(try await database.count("SELECT count(*)::int8 FROM import_chunks") == 0)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE data::text LIKE '%3331110%'") == 0)
        }
    }

    @Test func importingTheSameFileAgainChangesNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            let file = Self.everyOutcome(stopLineDate: Self.ago(60))
            let first = try await Self.finished(
                acme, try await Self.upload(acme, file, notice: notice).decoded(ImportReply.self).id)
            let consents = try await database.count("SELECT count(*)::int8 FROM consents")
            let collections = try await database.count("SELECT count(*)::int8 FROM collections")
            let consentEvents = try await database.count(
                "SELECT count(*)::int8 FROM audit_events WHERE action LIKE 'consent.%'")
            let again = try await Self.upload(acme, file, notice: notice)
            #expect(again.status == .accepted, "\(again.text)")
            let second = try await Self.finished(acme, try again.decoded(ImportReply.self).id)
            #expect(second.sameFileAs == first.id)
            #expect(second.sha256 == first.sha256)
            #expect(
                second.counts == [
                    "granted": 0, "pending": 0, "superseded": 0, "suppressed": 0, "duplicate": 7, "invalid": 3,
                ], "\(second.counts)")
            #expect(try await database.count("SELECT count(*)::int8 FROM consents") == consents)
            #expect(try await database.count("SELECT count(*)::int8 FROM collections") == collections)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action LIKE 'consent.%'")
                    == consentEvents)
        }
    }

    @Test func aDryRunChecksEveryRowAndRecordsNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            let reply = try await Self.upload(
                acme, Self.everyOutcome(stopLineDate: Self.ago(60)), notice: notice, dryRun: true)
            #expect(reply.status == .accepted, "\(reply.text)")
            let checked = try reply.decoded(ImportReply.self)
            #expect(checked.status == "validated" && checked.dryRun && checked.rows == 10)
            #expect(checked.counts["invalid"] == 3)
            let report = try await acme.call(.get, checked.rejectedRowsUrl, as: .consentWrite)
            #expect(report.text.split(separator: "\r\n").count == 4, "\(report.text)")
            for table in ["subjects", "consents", "collections", "import_chunks"] {
                #expect(try await database.count("SELECT count(*)::int8 FROM \(table)") == 0, "\(table)")
            }
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action LIKE 'import.%'") == 0)
        }
    }

    @Test(arguments: [
        ("subject,purposes\n+393331110001,marketing\n", "text/csv", 1, "no 'collectedAt' column"),
        ("subject,purposes,collectedAt,email\n", "text/csv", 1, "unknown column 'email'"),
        (
            "subject,purposes,collectedAt\n+393331110001,marketing,2025-01-01T00:00:00Z\n+39333,marketing\n",
            "text/csv", 3,
            "has 2 fields"
        ),
        (
            "subject,purposes,collectedAt\n\"+393331110001,marketing,2025-01-01T00:00:00Z\n", "text/csv", 2,
            "not closed"
        ),
        (
            "{\"subject\":\"+393331110001\",\"purposes\":[\"marketing\"],\"collectedAt\":\"2025-01-01T00:00:00Z\"}\nnot json\n",
            "application/x-ndjson", 2, "not a JSON object"
        ),
    ])
    func aMalformedFileIsRefusedWithItsLineAndLeavesNothing(
        file: String, contentType: String, line: Int, reason: String
    ) async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            let reply = try await Self.upload(acme, file, notice: notice, contentType: contentType)
            #expect(reply.status == .unprocessableContent, "\(reply.text)")
            let error = try reply.error
            #expect(error.code == "malformed_file")
            #expect(error.message.hasPrefix("line \(line):") && error.message.contains(reason), "\(error.message)")
            for table in ["imports", "import_chunks", "import_rows", "subjects", "consents"] {
                #expect(try await database.count("SELECT count(*)::int8 FROM \(table)") == 0, "\(table)")
            }
        }
    }

    @Test func theRequestItselfIsCheckedBeforeTheFileIsRead() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            let sms = try await acme.notice("sms", purposes: ["marketing"])
            let file = "subject,purposes,collectedAt\n"
            #expect(
                try await Self.upload(acme, file, notice: notice, contentType: "application/json").status
                    == .unsupportedMediaType)
            #expect(try await Self.upload(acme, file, notice: sms).error.field == "noticeId")
            #expect(try await Self.upload(acme, file, notice: UUID().uuidString).error.field == "noticeId")
            #expect(try await Self.upload(acme, file, notice: "nope").error.field == "noticeId")
            var headers = acme.tenant.bearer(.consentCheck)
            headers[.contentType] = "text/csv"
            let forbidden = try await acme.client.execute(
                uri: "/v1/imports?channel=whatsapp&noticeId=\(notice)", method: .post, headers: headers,
                body: ByteBuffer(string: file)
            ) { $0.status }
            #expect(forbidden == .forbidden)
            #expect(
                try await acme.call(.get, "/v1/imports/\(UUID().uuidString)", as: .consentWrite).status == .notFound)
        }
    }

    @Test func theListShowsTheTenantsImportsNewestFirst() async throws {
        try await withTenants(["acme", "other"]) { tenants, _ in
            let (acme, other) = (tenants[0], tenants[1])
            let notice = try await acme.notice(purposes: ["marketing"])
            var ids: [String] = []
            for person in ["+393331300001", "+393331300002"] {
                let file = "subject,purposes,collectedAt\n\(person),marketing,2025-01-01T00:00:00Z\n"
                let reply = try await Self.upload(acme, file, notice: notice)
                ids.append(try reply.decoded(ImportReply.self).id)
                _ = try await Self.finished(acme, ids[ids.count - 1])
            }
            struct Listed: Decodable { let imports: [ImportReply] }
            let listed = try await acme.call(.get, "/v1/imports", as: .consentWrite).decoded(Listed.self)
            #expect(listed.imports.map(\.id) == ids.reversed())
            #expect(listed.imports.allSatisfy { $0.status == "completed" && $0.counts["granted"] == 1 })
            let others = try await other.call(.get, "/v1/imports", as: .consentWrite).decoded(Listed.self)
            #expect(others.imports.isEmpty)
            #expect(try await acme.call(.get, "/v1/imports", as: .consentCheck).status == .forbidden)
        }
    }

    @Test func anNDJSONFileImportsLikeItsCSV() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            let file = """
                {"subject": "+393331110001", "purposes": ["marketing", "shipping_update"], "collectedAt": "\(Self.ago(3))", "source": "crm"}

                {"subject": "+393331110002", "purposes": "marketing", "collectedAt": "\(Self.ago(3))", "pageUrl": null}
                {"subject": "+393331110003", "purposes": ["nope!"], "collectedAt": "\(Self.ago(3))"}
                """
            let reply = try await Self.upload(acme, file, notice: notice, contentType: "application/x-ndjson")
            #expect(reply.status == .accepted, "\(reply.text)")
            let done = try await Self.finished(acme, try reply.decoded(ImportReply.self).id)
            #expect(done.counts["granted"] == 2 && done.counts["invalid"] == 1, "\(done.counts)")
            let report = try await acme.call(.get, done.rejectedRowsUrl, as: .consentWrite)
            #expect(report.text.contains("4,invalid,"), "\(report.text)")
        }
    }
}
