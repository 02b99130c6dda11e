import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import LocalPostgres
import Testing

/// A person with everything the service can hold: two consents with provenance, a withdrawal, a message.
extension APIClient {
    static let person = "+39 333 765 4321"
    static let personE164 = "+393337654321"
    static var personal: [String: Any] {
        [
            "pageUrl": "https://shop.example/checkout/ord-55123", "collectedAt": "2026-11-20T10:00:00Z",
            "method": "checkbox",
            "userAgent": "Mozilla/5.0 (Quokka; Erase-UA-9911)", "ipAddress": "198.51.100.77",
        ]
    }
    static let noticeText = "Yes, send me order updates and offers on WhatsApp. Notice v7."
    static let messageText = "Please deliver to Via Roma 12"

    func seedPerson() async throws -> String {
        let notice = try await notice(purposes: ["shipping_update", "marketing"], text: Self.noticeText)
        let optIn = try await optIn(
            Self.person, purposes: ["shipping_update", "marketing"], noticeId: notice, provenance: Self.personal)
        guard optIn.status == .created else { throw Unexpected(optIn.text) }
        _ = try await post(
            "/v1/revocations", as: .consentWrite,
            ["subject": Self.personE164, "channel": "whatsapp", "purposes": ["marketing"]])
        _ = try await post(
            "/v1/interactions", as: .consentWrite,
            [
                "subject": Self.personE164, "channel": "whatsapp", "direction": "inbound",
                "occurredAt": RFC3339.format(Date().addingTimeInterval(-60)), "text": Self.messageText,
            ])
        return notice
    }

    func export(_ subject: String = APIClient.personE164, channel: String = "whatsapp") async throws -> Reply {
        try await post("/v1/subjects/export", as: .dpo, ["subject": subject, "channel": channel])
    }

    func erase(_ subject: String = APIClient.personE164, objection: Bool? = nil, idempotencyKey: String? = nil)
        async throws -> Reply
    {
        var body: [String: Any] = ["subject": subject, "channel": "whatsapp"]
        if let objection { body["objection"] = objection }
        return try await post("/v1/subjects/erase", as: .dpo, body, idempotencyKey: idempotencyKey)
    }
}

@Suite struct SubjectExportAPITests {
    @Test func theBundleHoldsEverythingThePersonGaveAndProvesItsEvents() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            let noticeId = try await acme.seedPerson()
            let reply = try await acme.export(APIClient.person)
            #expect(reply.status == .ok, "\(reply.text)")
            #expect(reply.headers[.cacheControl] == "no-store")
            let bundle = try #require(try JSONValue.parse(reply.text).objectValue)

            #expect(bundle["subject"] == .string(APIClient.personE164))
            let consents = try #require(bundle["consents"]?.arrayValue?.compactMap { $0.objectValue })
            #expect(Set(consents.compactMap { $0["purpose"]?.stringValue }) == ["shipping_update", "marketing"])
            for consent in consents {
                let notice = try #require(consent["notice"]?.objectValue)
                #expect(notice["id"]?.stringValue == noticeId && notice["text"]?.stringValue == APIClient.noticeText)
                #expect(notice["textSha256"]?.stringValue == NoticeText.sha256Hex(APIClient.noticeText))
                let provenance = try #require(consent["provenance"]?.objectValue)
                for field in ["pageUrl", "userAgent", "ipAddress", "method"] {
                    #expect(provenance[field]?.stringValue == APIClient.personal[field] as? String, "\(field)")
                }
                #expect(consent["grantedAt"]?.stringValue != nil)
            }
            let marketing = try #require(consents.first { $0["purpose"]?.stringValue == "marketing" })
            #expect(marketing["status"]?.stringValue == "withdrawn" && marketing["revokedAt"]?.stringValue != nil)
            #expect(
                marketing["history"]?.arrayValue?.compactMap { $0.objectValue?["action"]?.stringValue } == [
                    "consent.granted", "consent.withdrawn",
                ])
            #expect(bundle["consentRecords"]?.arrayValue?.count == 2)
            let interactions = try #require(bundle["interactions"]?.arrayValue?.compactMap { $0.objectValue })
            #expect(interactions.map { $0["text"]?.stringValue } == [APIClient.messageText])
            #expect(bundle["serviceWindow"]?.objectValue?["open"] == .bool(true))

            // The bundle proves its own record: each event's leaf, recomputed from the bundle, is in the tree whose
            // root the included checkpoint signs, under the key the server's signer holds.
            let checkpoint = try #require(bundle["checkpoint"]?.objectValue)
            let verifier = try NoteVerifier(verifierKey: try #require(checkpoint["verifierKey"]?.stringValue))
            #expect(verifier.publicKey == testCheckpointSigner.publicKey)
            let signed = try Checkpoint(body: try verifier.open(try #require(checkpoint["note"]?.stringValue)))
            #expect(Double(signed.size) == checkpoint["treeSize"]?.numberValue)
            let events = try #require(bundle["auditEvents"]?.arrayValue?.compactMap { $0.objectValue })
            #expect(
                Set(events.compactMap { $0["action"]?.stringValue }) == [
                    "consent.granted", "consent.withdrawn", "interaction.received",
                ])
            #expect(events.count == 4)
            for var event in events {
                let proof = try #require(event.removeValue(forKey: "inclusionProof")?.objectValue)
                let leafHash = try #require(event.removeValue(forKey: "leafHash")?.stringValue)
                let leaf = MerkleTree.leafHash(try CanonicalJSON.serialize(.object(event)))
                #expect(Data(leaf).base64EncodedString() == leafHash)
                let hashes = try #require(
                    proof["hashes"]?.arrayValue?.compactMap {
                        $0.stringValue.flatMap { Data(base64Encoded: $0) }.map(Array.init)
                    })
                let index = try #require(proof["leafIndex"]?.numberValue)
                #expect(
                    MerkleTree.verifyInclusion(
                        leafHash: leaf, index: Int64(index), size: signed.size, proof: hashes, root: signed.rootHash))
                var forged = leaf
                forged[0] ^= 1
                #expect(
                    !MerkleTree.verifyInclusion(
                        leafHash: forged, index: Int64(index), size: signed.size, proof: hashes, root: signed.rootHash))
            }

            // Another tenant's DPO cannot tell this person exists; other scopes may not export; bad input is 422.
            let foreign = try await globex.export()
            #expect(try foreign.status == .notFound && foreign.error.code == "subject_not_found")
            #expect(try await acme.export("+15550001111").status == .notFound)
            let asWriter = try await acme.post(
                "/v1/subjects/export", as: .consentWrite, ["subject": APIClient.personE164, "channel": "whatsapp"])
            #expect(asWriter.status == .forbidden)
            let bad = try await acme.export("not a phone")
            #expect(try bad.status == .unprocessableContent && bad.error.field == "subject")
            #expect(!bad.text.contains("not a phone"), "the error does not echo personal data")
        }
    }
}

@Suite struct SubjectErasureAPITests {
    @Test func afterErasureNothingReadableRemainsAndTheLogVerifies() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let noticeId = try await acme.seedPerson()
            let subjectId = try #require(
                try await database.withClient(\.superuser) { client in
                    try await client.query("SELECT id FROM subjects").collect().first?.decode(UUID.self)
                })
            let erased = try await acme.erase()
            #expect(erased.status == .ok, "\(erased.text)")
            let erasure = try erased.decoded(ErasureReply.self)
            #expect(erasure.erased == true && erasure.subjectFound == true)
            #expect(erasure.suppressed == true, "the person had withdrawn marketing")
            #expect(RFC3339.parse(erasure.erasedAt) != nil)

            #expect(try await acme.export().status == .notFound)
            let check = try await acme.check(APIClient.personE164, purpose: "shipping_update").decoded(CheckReply.self)
            #expect(check.allowed == false && check.reason == "no_consent")
            #expect(
                try await acme.check(APIClient.personE164, purpose: "shipping_update", messageType: "session").decoded(
                    CheckReply.self
                ).allowed == false)

            // What is stored, read past row security: no key, no index, no ciphertext, no message.
            let id = subjectId.uuidString.lowercased()
            #expect(try await database.count("SELECT count(*)::int8 FROM subject_keys WHERE subject_id = '\(id)'") == 0)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM subjects WHERE id = '\(id)' AND blind_index IS NULL AND identifier_ciphertext IS NULL AND last_inbound_at IS NULL AND erased_at IS NOT NULL"
                ) == 1)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM collections WHERE provenance_ciphertext IS NOT NULL") == 0)
            #expect(try await database.count("SELECT count(*)::int8 FROM interactions") == 0)
            #expect(try await database.count("SELECT count(*)::int8 FROM consents WHERE status <> 'withdrawn'") == 0)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM consents") == 2,
                "the consents' history stays, unlinked")
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'subject.erased'") == 1
            )

            let dump = try DatabaseDump.plainSQL(database.superuser)
            #expect(dump.contains("subject.erased"))
            for secret in [
                "3337654321", "333 765 4321", "ord-55123", "shop.example", "Erase-UA-9911", "Quokka", "198.51.100.77",
                "Via Roma",
            ] {
                #expect(!dump.contains(secret), "'\(secret)' in the dump after erasure")
            }
            // The notice is the controller's wording shown to everyone, not the person's data: it stays as evidence.
            #expect(dump.contains(APIClient.noticeText))

            let verification = try await acme.call(.get, "/v1/audit/verification", as: .dpo)
            #expect(try verification.decoded(VerificationReply.self).ok == true, "\(verification.text)")

            // Again: idempotent. A withdrawal or a fresh opt-in for the person still works.
            let again = try await acme.erase()
            #expect(
                try again.status == .ok && again.decoded(ErasureReply.self).erased == true
                    && again.decoded(ErasureReply.self).subjectFound == false)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'subject.erased'") == 1
            )
            let withdrawal = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": APIClient.personE164, "channel": "whatsapp"])
            #expect(try withdrawal.status == .ok && withdrawal.decoded(RevocationReply.self).revoked.isEmpty)
            let fresh = try await acme.optIn(
                APIClient.personE164, purposes: ["shipping_update"], noticeId: noticeId,
                provenance: APIClient.freshProvenance)
            #expect(fresh.status == .created)
            #expect(
                try await acme.check(APIClient.personE164, purpose: "shipping_update").decoded(CheckReply.self).allowed
                    == true)
            let newExport = try await acme.export()
            #expect(newExport.status == .ok)
            #expect(
                try newExport.decoded(ExportReply.self).consents.count == 1,
                "the new subject does not inherit the erased one's history")
            #expect(
                try await acme.call(.get, "/v1/audit/verification", as: .dpo).decoded(VerificationReply.self).ok == true
            )
        }
    }

    @Test func aRetriedErasureWithItsKeyReplaysAndBadInputChangesNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            _ = try await acme.seedPerson()
            let first = try await acme.erase(idempotencyKey: "erase-1")
            let replay = try await acme.erase(idempotencyKey: "erase-1")
            #expect(first.status == .ok && replay.status == .ok && first.body == replay.body)
            #expect(replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(!String(decoding: first.body, as: UTF8.self).contains("3337654321"))

            let before = try await database.footprint()
            for body in [
                ["subject": "nonsense", "channel": "whatsapp"], ["subject": APIClient.personE164, "channel": "pigeon"],
                ["channel": "sms"],
            ] {
                let reply = try await acme.post("/v1/subjects/erase", as: .dpo, body)
                #expect(reply.status == .unprocessableContent, "\(reply.text)")
            }
            #expect(
                try await acme.post(
                    "/v1/subjects/erase", as: .admin, ["subject": APIClient.personE164, "channel": "whatsapp"]
                ).status == .forbidden)
            #expect(try await database.footprint() == before)
        }
    }
}

@Suite struct SuppressionAPITests {
    static func importProvenance() -> [String: Any] {
        APIClient.personal.merging(["method": "import"]) { $1 }
    }

    @Test func anErasedPersonWhoWithdrewCannotBeReimportedButMayOptInAgain() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            let noticeId = try await acme.seedPerson()
            #expect(try await acme.erase().decoded(ErasureReply.self).suppressed == true)
            #expect(try await database.count("SELECT count(*)::int8 FROM suppressions") == 1)

            let before = try await database.footprint()
            let imported = try await acme.optIn(
                APIClient.person, purposes: ["marketing"], noticeId: noticeId, provenance: Self.importProvenance())
            #expect(
                try imported.status == .unprocessableContent && imported.error.code == "suppressed", "\(imported.text)")
            #expect(try imported.error.field == "provenance.method")
            #expect(try await database.footprint() == before, "a refused import changes nothing")

            // The person's own opt-in is fresh consent; another tenant's import is not affected.
            let checkbox = try await acme.optIn(APIClient.person, purposes: ["marketing"], noticeId: noticeId)
            #expect(checkbox.status == .created)
            let globexNotice = try await globex.notice(purposes: ["marketing"])
            let elsewhere = try await globex.optIn(
                APIClient.person, purposes: ["marketing"], noticeId: globexNotice, provenance: Self.importProvenance())
            #expect(elsewhere.status == .created)
            // Only the keyed hash is kept; the audit event says why, not who.
            let dump = try DatabaseDump.plainSQL(database.superuser)
            #expect(dump.contains("suppression.added"))
        }
    }

    @Test func whoNeverWithdrewIsNotSuppressedUnlessTheyObject() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let noticeId = try await acme.notice(purposes: ["shipping_update"])
            _ = try await acme.optIn("+393330000001", purposes: ["shipping_update"], noticeId: noticeId)
            _ = try await acme.optIn("+393330000002", purposes: ["shipping_update"], noticeId: noticeId)
            #expect(try await acme.erase("+393330000001").decoded(ErasureReply.self).suppressed == false)
            #expect(
                try await acme.erase("+393330000002", objection: true).decoded(ErasureReply.self).suppressed == true)
            #expect(try await database.count("SELECT count(*)::int8 FROM suppressions WHERE reason = 'objected'") == 1)
            let first = try await acme.optIn(
                "+393330000001", purposes: ["shipping_update"], noticeId: noticeId, provenance: Self.importProvenance())
            #expect(first.status == .created, "no withdrawal, no objection: nothing to suppress")
            let second = try await acme.optIn(
                "+393330000002", purposes: ["shipping_update"], noticeId: noticeId, provenance: Self.importProvenance())
            #expect(try second.error.code == "suppressed")
            // A STOP-all from someone unknown is kept as an objection too.
            _ = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+393330000003", "channel": "whatsapp"])
            let third = try await acme.optIn(
                "+393330000003", purposes: ["shipping_update"], noticeId: noticeId, provenance: Self.importProvenance())
            #expect(try third.error.code == "suppressed")
        }
    }

    @Test func switchedOffNothingIsKeptOrRefused() async throws {
        let off = SubjectRightsPolicy(suppression: false, retention: .default)
        try await withTenants(["acme"], subjectRights: off) { tenants, database in
            let acme = tenants[0]
            let noticeId = try await acme.seedPerson()
            #expect(try await acme.erase(objection: true).decoded(ErasureReply.self).suppressed == false)
            #expect(try await database.count("SELECT count(*)::int8 FROM suppressions") == 0)
            let imported = try await acme.optIn(
                APIClient.person, purposes: ["marketing"], noticeId: noticeId, provenance: Self.importProvenance())
            #expect(imported.status == .created)
        }
    }
}

@Suite struct SubjectRequestAPITests {
    func request(_ api: APIClient, _ type: String, subject: String = APIClient.personE164, receivedAt: String? = nil)
        async throws -> APIClient.Reply
    {
        var body: [String: Any] = ["type": type, "subject": subject, "channel": "whatsapp"]
        if let receivedAt { body["receivedAt"] = receivedAt }
        return try await api.post("/v1/requests", as: .dpo, body)
    }

    @Test func dueDatesAcrossMonthEndsAndTheOverdueFlag() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            _ = try await acme.seedPerson()
            let leap = try await request(acme, "access", receivedAt: "2024-01-31T09:30:00Z")
            #expect(leap.status == .created, "\(leap.text)")
            let leapRequest = try leap.decoded(SubjectRequestReply.self)
            #expect(leapRequest.dueAt == "2024-02-29T09:30:00.000Z" && leapRequest.status == "pending")
            #expect(leapRequest.overdue == true)
            let common = try await request(acme, "portability", receivedAt: "2025-01-31T09:30:00Z")
            #expect(try common.decoded(SubjectRequestReply.self).dueAt == "2025-02-28T09:30:00.000Z")
            let now = try await request(acme, "erasure").decoded(SubjectRequestReply.self)
            let received = try #require(RFC3339.parse(now.receivedAt))
            #expect(abs(received.timeIntervalSinceNow) < 60)
            #expect(now.dueAt == RFC3339.format(ResponseDueDate.dueAt(receivedAt: received)))
            #expect(now.overdue == false)

            let pending = try await acme.call(.get, "/v1/requests?status=pending", as: .dpo)
            let listed = try pending.decoded(SubjectRequestListReply.self).requests
            #expect(listed.map(\.dueAt) == ["2024-02-29T09:30:00.000Z", "2025-02-28T09:30:00.000Z", now.dueAt])
            #expect(listed.map(\.overdue) == [true, true, false])
            #expect(try await acme.call(.get, "/v1/requests?status=bogus", as: .dpo).status == .unprocessableContent)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'request.received'")
                    == 3)

            let future = try await request(acme, "access", receivedAt: "2099-01-01T00:00:00Z")
            #expect(try future.status == .unprocessableContent && future.error.field == "receivedAt")
            let unknown = try await request(acme, "access", subject: "+15550001111")
            #expect(try unknown.status == .notFound && unknown.error.code == "subject_not_found")
            #expect(try await request(acme, "rectification").error.field == "type")
        }
    }

    @Test func completingCarriesTheRequestOutAndEachTransitionIsAudited() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            _ = try await acme.seedPerson()
            let access = try await request(acme, "access").decoded(SubjectRequestReply.self).id
            let erasure = try await request(acme, "erasure").decoded(SubjectRequestReply.self).id
            let cancelled = try await request(acme, "portability").decoded(SubjectRequestReply.self).id

            // Another tenant sees none of them.
            #expect(try await globex.call(.get, "/v1/requests/\(access)", as: .dpo).status == .notFound)
            #expect(try await globex.post("/v1/requests/\(access)/complete", as: .dpo, [:]).status == .notFound)
            #expect(
                try await globex.call(.get, "/v1/requests", as: .dpo).decoded(SubjectRequestListReply.self).requests
                    .isEmpty)

            let exported = try await acme.post("/v1/requests/\(access)/complete", as: .dpo, [:])
            #expect(exported.status == .ok, "\(exported.text)")
            let completion = try exported.decoded(RequestCompletionReply.self)
            let bundle = try #require(completion.export)
            #expect(bundle.subject == APIClient.personE164)
            #expect(bundle.pendingRequests.count == 2, "the other two are still pending while this one completes")
            #expect(completion.outcome == "exported" && completion.erasure == nil)
            #expect(completion.request.id == access && completion.request.status == "completed")
            #expect(completion.request.completedAt.flatMap(RFC3339.parse) != nil)
            #expect(completion.request.completedBy == acme.tenant.keys[.dpo]?.record.id.uuidString.lowercased())
            let twice = try await acme.post("/v1/requests/\(access)/complete", as: .dpo, [:])
            #expect(try twice.status == .conflict && twice.error.code == "request_not_pending")

            let cancel = try await acme.post("/v1/requests/\(cancelled)/cancel", as: .dpo, [:])
            #expect(
                try cancel.status == .ok && cancel.decoded(RequestCancellationReply.self).request.status == "cancelled")
            #expect(
                try cancel.decoded(RequestCancellationReply.self).request.cancelledBy
                    == acme.tenant.keys[.dpo]?.record.id.uuidString.lowercased())
            #expect(try await acme.post("/v1/requests/\(cancelled)/complete", as: .dpo, [:]).status == .conflict)

            let erased = try await acme.post("/v1/requests/\(erasure)/complete", as: .dpo, [:])
            #expect(
                try erased.status == .ok && erased.decoded(RequestCompletionReply.self).outcome == "erased",
                "\(erased.text)")
            #expect(try erased.decoded(RequestCompletionReply.self).erasure?.erased == true)
            #expect(try await acme.export().status == .notFound)
            let record = try await acme.call(.get, "/v1/requests/\(erasure)", as: .dpo)
            let recorded = try record.decoded(SubjectRequestReply.self)
            #expect(recorded.status == "completed" && recorded.overdue == false)

            let events = try await database.withClient(\.superuser) { client in
                try await client.query(
                    "SELECT action, data->>'outcome' FROM audit_events WHERE action LIKE 'request.%' OR action = 'subject.erased' ORDER BY id"
                )
                .collect().map { try $0.decode((String, String?).self) }
            }
            #expect(
                events.map(\.0) == [
                    "request.received", "request.received", "request.received", "request.completed",
                    "request.cancelled", "subject.erased", "request.completed",
                ])
            #expect(events.compactMap(\.1) == ["exported", "cancelled", "erased"])
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE action = 'subject.erased' AND data->>'requestId' = '\(erasure)'"
                ) == 1)
            #expect(
                try await acme.call(.get, "/v1/audit/verification", as: .dpo).decoded(VerificationReply.self).ok == true
            )
            #expect(try await acme.call(.get, "/v1/requests/not-a-uuid", as: .dpo).status == .notFound)
        }
    }
}

extension JSONValue {
    var objectValue: [String: JSONValue]? { if case .object(let members) = self { members } else { nil } }
    var arrayValue: [JSONValue]? { if case .array(let elements) = self { elements } else { nil } }
    var stringValue: String? { if case .string(let text) = self { text } else { nil } }
    var numberValue: Double? { if case .number(let number) = self { number } else { nil } }
}
