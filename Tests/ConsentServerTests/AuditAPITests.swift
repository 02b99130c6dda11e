import ConsentCore
import Foundation
import HTTPTypes
import Testing

/// The audit log through the HTTP API, checked the way an outside auditor would: from the answers alone.
@Suite struct AuditAPITests {
    static let accept = HTTPField.Name.accept

    /// A tenant with a notice, two opt-ins and a withdrawal.
    static func activity(_ api: APIClient, subject: String = "+393331234567") async throws {
        let notice = try await api.notice(purposes: ["marketing", "shipping_update"])
        #expect(
            try await api.optIn(subject, purposes: ["marketing", "shipping_update"], noticeId: notice).status
                == .created)
        #expect(try await api.optIn("+393337654321", purposes: ["marketing"], noticeId: notice).status == .created)
        let withdrawn = try await api.post(
            "/v1/revocations", as: .consentWrite,
            ["subject": subject, "channel": "whatsapp", "purposes": ["marketing"]])
        #expect(withdrawn.status == .ok, "\(withdrawn.text)")
    }

    /// The tree size the checkpoint states; a reply that is not a checkpoint fails the test with its text.
    static func checkpoint(_ api: APIClient) async throws -> (note: String, size: Int) {
        let reply = try await api.call(.get, "/v1/audit/checkpoint", as: .dpo)
        let lines = reply.text.split(separator: "\n")
        let size = try #require(lines.count > 1 ? Int(lines[1]) : nil, "\(reply.status): \(reply.text)")
        return (reply.text, size)
    }

    struct Key: Decodable {
        let origin: String
        let publicKey: String
        let verifierKey: String
    }

    static func allEvents(_ api: APIClient) async throws -> [AuditEventReply] {
        var events: [AuditEventReply] = []
        var after: Int?
        repeat {
            let reply = try await api.call(
                .get, "/v1/audit/events?limit=3" + (after.map { "&after=\($0)" } ?? ""), as: .dpo)
            #expect(reply.status == .ok, "\(reply.text)")
            let page = try reply.decoded(AuditEventPageReply.self)
            events += page.events
            after = page.next
        } while after != nil
        return events
    }

    static func base64(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map(Array.init) }

    /// Base64 hashes, each of which must decode.
    static func hashes(_ texts: [String]) throws -> [[UInt8]] {
        try texts.map { try #require(base64($0), "\($0) is not base64") }
    }

    @Test func anAuditorChecksLeavesProofsAndTheSignedCheckpointFromTheAPIAlone() async throws {
        try await withTenants(["acme"]) { apis, _ in
            let api = apis[0]
            try await Self.activity(api)
            let key = try await api.call(.get, "/v1/audit/key", as: .dpo).decoded(Key.self)
            #expect(key.origin == "consentledger.test/acme")
            let verifier = try NoteVerifier(verifierKey: key.verifierKey)
            #expect(Data(verifier.publicKey).base64EncodedString() == key.publicKey)

            let first = try await api.call(.get, "/v1/audit/checkpoint", as: .dpo)
            #expect(first.status == .ok)
            #expect(first.headers[.contentType]?.hasPrefix("text/plain") == true)
            let firstCheckpoint = try Checkpoint(body: try verifier.open(first.text))
            #expect(firstCheckpoint.origin == key.origin)

            // More activity, then the auditor's second visit.
            let notice = try await api.notice(purposes: ["account_update"], text: "Account news")
            #expect(
                try await api.optIn("+393339999999", purposes: ["account_update"], noticeId: notice).status == .created)
            let second = try Checkpoint(
                body: try verifier.open(try await api.call(.get, "/v1/audit/checkpoint", as: .dpo).text))
            #expect(second.size > firstCheckpoint.size)

            let events = try await Self.allEvents(api)
            #expect(events.count == Int(second.size))
            #expect(events.map(\.seq) == Array(0..<events.count))
            var leaves: [[UInt8]] = []
            for event in events {
                var fields = event.members
                #expect(fields.removeValue(forKey: "leafHash") == .string(event.leafHash))
                let leafHash = try #require(Self.base64(event.leafHash))
                let canonical = try CanonicalJSON.serialize(.object(fields))
                #expect(MerkleTree.leafHash(canonical) == leafHash, "\(event.members)")
                leaves.append(leafHash)
            }
            #expect(MerkleTree.root(leaves[...]) == second.rootHash)
            #expect(MerkleTree.root(leaves[..<Int(firstCheckpoint.size)]) == firstCheckpoint.rootHash)

            for seq in 0..<events.count {
                let reply = try await api.call(
                    .get, "/v1/audit/proofs/inclusion?seq=\(seq)&treeSize=\(second.size)", as: .dpo)
                let inclusion = try reply.decoded(InclusionProofReply.self)
                #expect(inclusion.seq == seq && inclusion.treeSize == Int(second.size))
                let hashes = try Self.hashes(inclusion.hashes)
                #expect(
                    MerkleTree.verifyInclusion(
                        leafHash: leaves[seq], index: Int64(seq), size: second.size, proof: hashes,
                        root: second.rootHash))
            }
            let consistency = try await api.call(
                .get, "/v1/audit/proofs/consistency?from=\(firstCheckpoint.size)&to=\(second.size)", as: .dpo)
            let consistencyProof = try consistency.decoded(ConsistencyProofReply.self)
            #expect(consistencyProof.from == Int(firstCheckpoint.size))
            let proof = try Self.hashes(consistencyProof.hashes)
            #expect(
                MerkleTree.verifyConsistency(
                    firstSize: firstCheckpoint.size, secondSize: second.size, firstRoot: firstCheckpoint.rootHash,
                    secondRoot: second.rootHash, proof: proof))

            let verification = try await api.call(.get, "/v1/audit/verification", as: .dpo)
            let verified = try verification.decoded(VerificationReply.self)
            #expect(verified.ok == true, "\(verification.text)")
            #expect(verified.eventsChecked == events.count)
        }
    }

    @Test func eventsNameActionsAndSubjectsByReferenceAndHoldNoPersonalData() async throws {
        try await withTenants(["acme"]) { apis, _ in
            let api = apis[0]
            try await Self.activity(api, subject: "+393331112223")
            let events = try await Self.allEvents(api)
            let actions = events.map(\.action)
            #expect(actions.first == "tenant.created")
            #expect(
                actions.contains("notice.created") && actions.contains("consent.granted")
                    && actions.contains("consent.withdrawn"))
            #expect(
                events.filter { $0.action == "consent.granted" }.allSatisfy {
                    UUID(uuidString: $0.subjectRef ?? "") != nil
                })
            for format in ["application/json", "text/csv", "application/x-ndjson", "text/html"] {
                let body = try await api.call(.get, "/v1/audit/events", as: .dpo, headers: [Self.accept: format]).text
                #expect(!body.contains("3331112223") && !body.contains("203.0.113.7"), "\(format)")
            }
        }
    }

    @Test func reportsStateTheirCheckpointAndListEveryEventItCovers() async throws {
        try await withTenants(["acme"]) { apis, _ in
            let api = apis[0]
            try await Self.activity(api)
            let (checkpoint, size) = try await Self.checkpoint(api)

            let csv = try await api.call(.get, "/v1/audit/events", as: .dpo, headers: [Self.accept: "text/csv"])
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.headers[HTTPField.Name("Audit-Tree-Size")!] == String(size))
            let lines = csv.text.split(separator: "\n")
            #expect(lines.first == "# consentledger.test/acme")
            #expect(lines.contains("seq,at,action,actor,subject_ref,data,leaf_hash"))
            #expect(lines.filter { !$0.hasPrefix("#") }.count == size + 1)

            let ndjson = try await api.call(
                .get, "/v1/audit/events", as: .dpo, headers: [Self.accept: "application/x-ndjson"])
            let ndjsonLines = ndjson.text.split(separator: "\n").map { Data($0.utf8) }
            let head = try JSONDecoder().decode(AuditReportHeadReply.self, from: try #require(ndjsonLines.first))
            #expect(head.checkpoint.note == checkpoint)
            let records = try ndjsonLines.dropFirst().map { try JSONDecoder().decode(AuditEventReply.self, from: $0) }
            #expect(records.map(\.seq) == Array(0..<size))

            let html = try await api.call(.get, "/v1/audit/events", as: .dpo, headers: [Self.accept: "text/html"])
            #expect(html.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(html.text.contains("<h2>Events by purpose</h2>") && html.text.contains("<td>marketing</td>"))
            #expect(
                html.text.contains("consent.withdrawn") && html.text.contains("consentd audit verify --tenant acme"))

            // A period with nothing in it.
            let empty = try await api.call(
                .get, "/v1/audit/events?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z", as: .dpo)
            #expect(try empty.decoded(AuditEventPageReply.self).events.isEmpty)
        }
    }

    @Test func eachTenantHasItsOwnLogAndOnlyTheDPOReadsIt() async throws {
        try await withTenants(["acme", "globex"]) { apis, _ in
            let (acme, globex) = (apis[0], apis[1])
            try await Self.activity(acme)
            let theirs = try await Self.allEvents(globex)
            #expect(theirs.first?.action == "tenant.created")
            #expect(!theirs.contains { $0.action.hasPrefix("consent.") })
            #expect(!theirs.contains { $0.action == "notice.created" })
            let key = try await globex.call(.get, "/v1/audit/key", as: .dpo).decoded(Key.self)
            #expect(key.origin == "consentledger.test/globex")
            let note = try await globex.call(.get, "/v1/audit/checkpoint", as: .dpo).text
            #expect(try NoteVerifier(verifierKey: key.verifierKey).open(note).hasPrefix("consentledger.test/globex\n"))
            // The same Ed25519 key under acme's name does not accept globex's checkpoint: names bind logs.
            let publicKey = try NoteVerifier(verifierKey: key.verifierKey).publicKey
            #expect(throws: SignedNoteError.noSignatureByKey("consentledger.test/acme")) {
                try NoteVerifier(name: "consentledger.test/acme", publicKey: publicKey).open(note)
            }
            for scope in Scope.allCases where scope != .dpo {
                for path in [
                    "/v1/audit/events", "/v1/audit/checkpoint", "/v1/audit/key", "/v1/audit/verification",
                    "/v1/audit/proofs/inclusion?seq=0&treeSize=1", "/v1/audit/proofs/consistency?from=1&to=1",
                ] {
                    #expect(try await acme.call(.get, path, as: scope).status == .forbidden, "\(scope) \(path)")
                }
            }
        }
    }

    @Test func malformedProofAndPageRequestsAreRefusedWithTheirField() async throws {
        try await withTenants(["acme"]) { apis, _ in
            let api = apis[0]
            let size = try await Self.checkpoint(api).size
            let cases: [(String, String)] = [
                ("/v1/audit/proofs/inclusion?seq=0", "treeSize"),
                ("/v1/audit/proofs/inclusion?seq=-1&treeSize=1", "seq"),
                ("/v1/audit/proofs/inclusion?seq=\(size)&treeSize=\(size)", "seq"),
                ("/v1/audit/proofs/inclusion?seq=0&treeSize=\(size + 1)", "treeSize"),
                ("/v1/audit/proofs/inclusion?seq=x&treeSize=1", "seq"),
                ("/v1/audit/proofs/consistency?from=0&to=1", "from"),
                ("/v1/audit/proofs/consistency?from=2&to=1", "from"),
                ("/v1/audit/proofs/consistency?from=1&to=\(size + 5)", "to"),
                ("/v1/audit/events?limit=0", "limit"),
                ("/v1/audit/events?limit=1001", "limit"),
                ("/v1/audit/events?after=abc", "after"),
                ("/v1/audit/events?from=yesterday", "from"),
            ]
            for (path, field) in cases {
                let reply = try await api.call(.get, path, as: .dpo)
                #expect(reply.status == .unprocessableContent, "\(path): \(reply.text)")
                #expect(try reply.error.field == field, "\(path)")
            }
            let same = try await api.call(.get, "/v1/audit/proofs/consistency?from=\(size)&to=\(size)", as: .dpo)
            #expect(try same.status == .ok && same.decoded(ConsistencyProofReply.self).hashes.isEmpty)
        }
    }
}
