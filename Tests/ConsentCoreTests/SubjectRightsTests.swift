import Crypto
import Foundation
import Testing

@testable import ConsentCore

@Suite struct ResponseDueDateTests {
    static func utc(_ text: String) -> Date { RFC3339.parse(text)! }

    @Test(arguments: [
        // Month ends: the same day next month, or that month's last day.
        ("2025-01-31T09:30:00.000Z", "2025-02-28T09:30:00.000Z"),
        ("2024-01-31T09:30:00.000Z", "2024-02-29T09:30:00.000Z"),
        ("2100-01-31T00:00:00.000Z", "2100-02-28T00:00:00.000Z"),
        ("2000-01-30T23:59:59.999Z", "2000-02-29T23:59:59.999Z"),
        ("2024-01-29T12:00:00.000Z", "2024-02-29T12:00:00.000Z"),
        ("2025-01-28T12:00:00.000Z", "2025-02-28T12:00:00.000Z"),
        ("2025-03-31T08:00:00.000Z", "2025-04-30T08:00:00.000Z"),
        ("2025-05-31T08:00:00.000Z", "2025-06-30T08:00:00.000Z"),
        ("2025-08-31T08:00:00.000Z", "2025-09-30T08:00:00.000Z"),
        ("2025-10-31T08:00:00.000Z", "2025-11-30T08:00:00.000Z"),
        // Year end, and ordinary days.
        ("2025-12-31T23:00:00.000Z", "2026-01-31T23:00:00.000Z"),
        ("2025-12-15T00:00:00.000Z", "2026-01-15T00:00:00.000Z"),
        ("2026-02-28T10:00:00.000Z", "2026-03-28T10:00:00.000Z"),
        ("2024-02-29T10:00:00.000Z", "2024-03-29T10:00:00.000Z"),
        ("2026-11-24T17:45:12.345Z", "2026-12-24T17:45:12.345Z"),
        ("1969-12-31T23:59:59.000Z", "1970-01-31T23:59:59.000Z"),
    ])
    func oneCalendarMonthLater(received: String, due: String) {
        #expect(RFC3339.format(ResponseDueDate.dueAt(receivedAt: Self.utc(received))) == due)
    }

    /// Every day of four years, leap and not: the due date is in the next month, on the same day or the month's
    /// last, at the same time, and always later than receipt.
    @Test func everyDayOfALeapCycle() {
        let calendar: Calendar = {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            return calendar
        }()
        var day = Self.utc("2023-01-01T06:07:08.000Z")
        for _ in 0..<(4 * 366) {
            let due = ResponseDueDate.dueAt(receivedAt: day)
            let from = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: day)
            let to = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: due)
            let expectedMonth = from.month! == 12 ? 1 : from.month! + 1
            let lastDay = calendar.range(
                of: .day, in: .month, for: calendar.date(from: DateComponents(year: to.year, month: to.month))!)!.count
            #expect(to.month == expectedMonth && to.year == (from.month == 12 ? from.year! + 1 : from.year))
            #expect(to.day == min(from.day!, lastDay))
            #expect(to.hour == from.hour && to.minute == from.minute && to.second == from.second)
            #expect(due > day)
            day = day.addingTimeInterval(86_400)
        }
    }

    @Test func overdueOnlyWhilePendingAndPastTheDueTime() {
        let due = Self.utc("2026-02-28T09:30:00.000Z")
        #expect(!ResponseDueDate.isOverdue(status: .pending, dueAt: due, now: due))
        #expect(ResponseDueDate.isOverdue(status: .pending, dueAt: due, now: due.addingTimeInterval(0.001)))
        #expect(!ResponseDueDate.isOverdue(status: .completed, dueAt: due, now: due.addingTimeInterval(86_400)))
        #expect(!ResponseDueDate.isOverdue(status: .cancelled, dueAt: due, now: due.addingTimeInterval(86_400)))
        #expect(!ResponseDueDate.isOverdue(status: .pending, dueAt: due, now: due.addingTimeInterval(-1)))
    }
}

@Suite struct SubjectExportDocumentTests {
    static let notice = Notice(
        id: UUID(), channel: .whatsapp, language: "it", version: 2, text: "Sì, voglio gli aggiornamenti.",
        textSha256: NoticeText.sha256Hex("Sì, voglio gli aggiornamenti."), purposes: ["marketing"], createdAt: Date())

    static func export(consents: [SubjectExport.Consent], events: [SubjectExport.ProvenEvent] = []) throws
        -> SubjectExport
    {
        SubjectExport(
            subject: try SubjectIdentifier("+39 333 123 4567", channel: .whatsapp), subjectRef: UUID(),
            controller: "acme",
            firstSeenAt: ResponseDueDateTests.utc("2026-01-01T00:00:00Z"),
            exportedAt: ResponseDueDateTests.utc("2026-11-24T12:00:00Z"),
            window: ServiceWindow(lastInboundAt: ResponseDueDateTests.utc("2026-11-24T10:00:00Z")), consents: consents,
            interactions: [
                SubjectExport.Interaction(
                    id: UUID(), kind: "message", occurredAt: ResponseDueDateTests.utc("2026-11-24T10:00:00Z"),
                    receivedAt: ResponseDueDateTests.utc("2026-11-24T10:00:01Z"), text: "Dov'è il mio pacco?")
            ],
            pendingRequests: [], auditEvents: events,
            checkpoint: SubjectExport.CheckpointReference(
                treeSize: 9, rootHash: Array(repeating: 1, count: 32), note: "note", verifierKey: "key"))
    }

    static func collection(_ at: String, method: CollectionMethod = .checkbox, purged: Bool = false)
        -> SubjectExport.Collection
    {
        SubjectExport.Collection(
            id: UUID(), notice: notice, method: method, collectedAt: ResponseDueDateTests.utc(at),
            receivedAt: ResponseDueDateTests.utc(at).addingTimeInterval(1),
            provenance: purged
                ? nil
                : Provenance(pageUrl: "https://shop.example/checkout", userAgent: "UA/1", ipAddress: "203.0.113.7"))
    }

    @Test func theContractsFieldsAndEveryPieceOfEvidence() throws {
        let withdrawn = SubjectExport.Consent(
            id: UUID(), purpose: Purpose.builtIns[10], status: "withdrawn",
            createdAt: ResponseDueDateTests.utc("2026-03-01T10:00:00Z"),
            grantedAt: ResponseDueDateTests.utc("2026-03-01T10:00:00Z"),
            revokedAt: ResponseDueDateTests.utc("2026-06-01T10:00:00Z"), revokeSource: .stopKeyword,
            notice: Self.notice,
            evidence: [
                Self.collection("2026-03-01T09:59:00Z"),
                Self.collection("2026-04-01T09:59:00Z", method: .import, purged: true),
            ])
        let json = SubjectExportDocument.json(try Self.export(consents: [withdrawn]))
        guard case .object(let bundle) = json, case .array(let consents)? = bundle["consents"],
            case .object(let consent)? = consents.first, case .object(let notice)? = consent["notice"],
            case .object(let provenance)? = consent["provenance"], case .array(let evidence)? = consent["evidence"],
            case .array(let interactions)? = bundle["interactions"], case .object(let interaction)? = interactions.first
        else {
            Issue.record("unexpected shape: \(json)")
            return
        }
        #expect(bundle["subject"] == .string("+393331234567") && bundle["channel"] == .string("whatsapp"))
        #expect(bundle["exportedAt"] == .string("2026-11-24T12:00:00.000Z"))
        #expect(consent["purpose"] == .string("marketing") && consent["status"] == .string("withdrawn"))
        #expect(
            consent["revokedAt"] == .string("2026-06-01T10:00:00.000Z")
                && consent["revokeSource"] == .string("stop_keyword"))
        #expect(
            notice["text"] == .string("Sì, voglio gli aggiornamenti.")
                && notice["textSha256"] == .string(Self.notice.textSha256))
        #expect(provenance["pageUrl"] == .string("https://shop.example/checkout"))
        #expect(provenance["userAgent"] == .string("UA/1") && provenance["ipAddress"] == .string("203.0.113.7"))
        #expect(
            provenance["method"] == .string("checkbox")
                && provenance["collectedAt"] == .string("2026-03-01T09:59:00.000Z"))
        #expect(evidence.count == 2)
        if case .object(let second) = evidence[1] {
            #expect(
                second["personalDataPurged"] == .bool(true) && second["pageUrl"] == nil
                    && second["method"] == .string("import"))
        }
        #expect(interaction["text"] == .string("Dov'è il mio pacco?"))
        #expect(
            bundle["serviceWindow"] == .object(["open": .bool(true), "closesAt": .string("2026-11-25T10:00:00.000Z")]))
    }

    @Test func consentRecordsFollowTheSectionsOfTS27560() throws {
        let subjectRef = UUID()
        let pending = SubjectExport.Consent(
            id: UUID(), purpose: Purpose.builtIns[2], status: "pending",
            createdAt: ResponseDueDateTests.utc("2026-03-01T10:00:00Z"),
            grantedAt: nil, revokedAt: nil, revokeSource: nil, notice: Self.notice,
            evidence: [Self.collection("2026-03-01T10:00:00Z", method: .doubleOptIn)])
        let byDPO = SubjectExport.Consent(
            id: UUID(), purpose: Purpose.builtIns[10], status: "withdrawn",
            createdAt: ResponseDueDateTests.utc("2026-03-01T10:00:00Z"),
            grantedAt: ResponseDueDateTests.utc("2026-03-01T10:00:00Z"),
            revokedAt: ResponseDueDateTests.utc("2026-05-01T10:00:00Z"),
            revokeSource: .dpo, notice: Self.notice,
            evidence: [Self.collection("2026-03-01T10:00:00Z"), Self.collection("2026-04-01T10:00:00Z")])
        let base = try Self.export(consents: [pending, byDPO])
        let export = SubjectExport(
            subject: base.subject, subjectRef: subjectRef, controller: "acme", firstSeenAt: base.firstSeenAt,
            exportedAt: base.exportedAt, window: base.window, consents: base.consents, interactions: [],
            pendingRequests: [],
            auditEvents: [], checkpoint: base.checkpoint)
        let first = ConsentRecord27560.json(pending, export: export)
        let second = ConsentRecord27560.json(byDPO, export: export)
        guard case .object(let record) = first, case .object(let header)? = record["record_header"],
            case .object(let processing)? = record["pii_processing"],
            case .object(let parties)? = record["party_identification"],
            case .array(let events)? = record["events"], case .object(let later) = second,
            case .array(let laterEvents)? = later["events"]
        else {
            Issue.record("unexpected shape")
            return
        }
        #expect(header["record_id"] == .string(pending.id.lowercased))
        #expect(
            header["pii_principal_id"] == .string(subjectRef.lowercased),
            "the principal is named by reference, not identifier")
        #expect(header["record_state"] == .string("pending_confirmation"))
        #expect(header["schema_version"] == .string(ConsentRecord27560.schemaVersion))
        #expect(processing["collection_method"] == .string("double_opt_in") && processing["language"] == .string("it"))
        #expect(parties["pii_controllers"] == .array([.object(["controller_id": .string("acme")])]))
        #expect(events.count == 1)
        if case .object(let event) = events[0] { #expect(event["event_type"] == .string("consent_requested")) }
        let types = laterEvents.compactMap { event -> String? in
            guard case .object(let members) = event, case .string(let type)? = members["event_type"] else { return nil }
            return type
        }
        #expect(types == ["consent_given", "consent_reaffirmed", "consent_withdrawn"])
        if case .object(let withdrawal) = laterEvents[2] {
            #expect(
                withdrawal["event_by"] == .string("pii_controller") && withdrawal["event_state"] == .string("withdrawn")
            )
        }
        let text = String(decoding: try CanonicalJSON.serialize(first), as: UTF8.self)
        #expect(!text.contains("3331234567"), "a consent record carries no identifier")
    }

    @Test func historyComesFromTheConsentsAuditEvents() throws {
        let consentId = UUID()
        let events = [
            ("consent.granted", consentId), ("interaction.received", UUID()), ("consent.withdrawn", consentId),
        ].enumerated().map { index, pair in
            SubjectExport.ProvenEvent(
                record: AuditRecord(
                    seq: Int64(index + 3), at: "2026-0\(index + 1)-01T00:00:00.000Z", action: pair.0, actor: "k",
                    subjectRef: nil,
                    data: pair.0.hasPrefix("consent.")
                        ? ["consentId": .string(pair.1.lowercased)] : ["interactionId": .string(pair.1.lowercased)]),
                leafHash: Array(repeating: 2, count: 32), inclusionProof: [Array(repeating: 3, count: 32)])
        }
        let history = SubjectExportDocument.consentHistory(events)
        #expect(history[consentId]?.count == 2)
        #expect(
            history[consentId]?.last
                == .object([
                    "action": .string("consent.withdrawn"), "at": .string("2026-03-01T00:00:00.000Z"),
                    "seq": .number(5),
                ]))
        guard case .object(let proven) = SubjectExportDocument.proven(events[0], treeSize: 9),
            case .object(let proof)? = proven["inclusionProof"]
        else {
            Issue.record("no proof")
            return
        }
        #expect(proof["leafIndex"] == .number(3) && proof["treeSize"] == .number(9))
        #expect(proven["leafHash"] == .string(Data(repeating: 2, count: 32).base64EncodedString()))
    }
}

@Suite struct SubjectRightsKeysTests {
    @Test func suppressionHashIsKeyedAndUnlinkedFromTheBlindIndex() throws {
        let subject = try SubjectIdentifier("+393331234567", channel: .whatsapp)
        let key = SymmetricKey(size: .bits256)
        let hash = SuppressionHash.compute(subject, key: key)
        #expect(hash.count == 32)
        #expect(
            hash == SuppressionHash.compute(try SubjectIdentifier("0039 333 123 4567", channel: .whatsapp), key: key))
        #expect(hash != SuppressionHash.compute(subject, key: SymmetricKey(size: .bits256)))
        #expect(hash != SuppressionHash.compute(try SubjectIdentifier("+393331234567", channel: .sms), key: key))
        #expect(hash != BlindIndex.compute(subject, key: key), "domain-separated even under one key")
    }

    @Test func masterKeyIdsNameKeysWithoutRevealingThem() {
        let bytes = Array(repeating: UInt8(7), count: 32)
        let id = MasterKeyID.of(SymmetricKey(data: bytes))
        #expect(id.count == 8)
        #expect(id == MasterKeyID.of(SymmetricKey(data: bytes)))
        #expect(id != MasterKeyID.of(SymmetricKey(data: Array(repeating: UInt8(8), count: 32))))
        #expect(!Array(SHA256.hash(data: bytes)).starts(with: id), "not a plain hash of the key")
    }

    @Test func subjectRightsConfiguration() throws {
        let base = [
            "DATABASE_URL": "postgres://u@localhost/d",
            "CONSENTD_MASTER_KEY": Data(repeating: 7, count: 32).base64EncodedString(),
            "CONSENTD_SIGNING_KEY": Data(repeating: 8, count: 32).base64EncodedString(),
        ]
        let defaults = try ServeConfiguration.parse(environment: base)
        #expect(defaults.subjectRights == .default && defaults.subjectRights.suppression)
        #expect(
            defaults.subjectRights.retention
                == RetentionPolicy(interactionDays: 90, withdrawnProvenanceYears: 3, idempotencyDays: 7))
        #expect(defaults.unwrapMasterKeys.isEmpty)
        #expect(defaults.checkCacheEntries == 100_000)
        #expect(
            try ServeConfiguration.parse(environment: base.merging(["CONSENTD_CHECK_CACHE_ENTRIES": "0"]) { $1 })
                .checkCacheEntries == 0)
        #expect(throws: ConfigurationError.self) {
            try ServeConfiguration.parse(environment: base.merging(["CONSENTD_CHECK_CACHE_ENTRIES": "lots"]) { $1 })
        }
        #expect(defaults.databasePoolSize == 20)
        #expect(
            try ServeConfiguration.parse(environment: base.merging(["CONSENTD_DB_POOL_SIZE": "64"]) { $1 })
                .databasePoolSize == 64)
        #expect(throws: ConfigurationError.self) {
            try ServeConfiguration.parse(environment: base.merging(["CONSENTD_DB_POOL_SIZE": "1"]) { $1 })
        }

        let old1 = Data(repeating: 1, count: 32).base64EncodedString()
        let old2 = Data(repeating: 2, count: 32).base64EncodedString()
        let set = try ServeConfiguration.parse(
            environment: base.merging([
                "CONSENTD_SUPPRESSION": "false", "CONSENTD_RETENTION_INTERACTION_DAYS": "30",
                "CONSENTD_RETENTION_PROVENANCE_YEARS": "6", "CONSENTD_RETENTION_IDEMPOTENCY_DAYS": "1",
                "CONSENTD_UNWRAP_MASTER_KEYS": "\(old1), \(old2)", "CONSENTD_RETIRED_SIGNING_KEYS": "\(old2),\(old1)",
            ]) { $1 })
        #expect(set.retiredSigningKeys == [Array(repeating: 2, count: 32), Array(repeating: 1, count: 32)])
        #expect(defaults.retiredSigningKeys.isEmpty)
        #expect(!set.subjectRights.suppression)
        #expect(
            set.subjectRights.retention
                == RetentionPolicy(interactionDays: 30, withdrawnProvenanceYears: 6, idempotencyDays: 1))
        #expect(set.unwrapMasterKeys.map(\.bytes) == [Array(repeating: 1, count: 32), Array(repeating: 2, count: 32)])

        for (name, value) in [
            ("CONSENTD_SUPPRESSION", "maybe"), ("CONSENTD_RETENTION_INTERACTION_DAYS", "0"),
            ("CONSENTD_RETENTION_PROVENANCE_YEARS", "three"), ("CONSENTD_RETENTION_IDEMPOTENCY_DAYS", "-1"),
            ("CONSENTD_UNWRAP_MASTER_KEYS", "\(old1),c2hvcnQ="), ("CONSENTD_RETIRED_SIGNING_KEYS", "\(old1),,"),
        ] {
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") {
                try ServeConfiguration.parse(environment: base.merging([name: value]) { $1 })
            }
            do {
                _ = try ServeConfiguration.parse(environment: base.merging([name: value]) { $1 })
            } catch {
                #expect(error.variable == name)
                #expect(!error.description.contains(old1), "a key never appears in a message")
            }
        }
    }
}
