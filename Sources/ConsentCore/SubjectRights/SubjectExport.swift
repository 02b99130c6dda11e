import Foundation

/// Everything held about one person on one channel, decrypted, as the export bundle presents it (Art. 15, 20).
public struct SubjectExport: Sendable {
    /// One opt-in as collected. `provenance` is nil once retention has purged it.
    public struct Collection: Sendable {
        public let id: UUID
        public let notice: Notice
        public let method: CollectionMethod
        public let collectedAt: Date
        public let receivedAt: Date
        public let provenance: Provenance?

        public init(
            id: UUID, notice: Notice, method: CollectionMethod, collectedAt: Date, receivedAt: Date,
            provenance: Provenance?
        ) {
            self.id = id
            self.notice = notice
            self.method = method
            self.collectedAt = collectedAt
            self.receivedAt = receivedAt
            self.provenance = provenance
        }
    }

    public struct Consent: Sendable {
        public let id: UUID
        public let purpose: Purpose
        public let status: String
        public let createdAt: Date
        public let grantedAt: Date?
        public let revokedAt: Date?
        public let revokeSource: RevocationSource?
        public let notice: Notice
        /// Oldest first: the opt-in that made the consent, then each re-confirmation.
        public let evidence: [Collection]

        public init(
            id: UUID, purpose: Purpose, status: String, createdAt: Date, grantedAt: Date?, revokedAt: Date?,
            revokeSource: RevocationSource?, notice: Notice, evidence: [Collection]
        ) {
            self.id = id
            self.purpose = purpose
            self.status = status
            self.createdAt = createdAt
            self.grantedAt = grantedAt
            self.revokedAt = revokedAt
            self.revokeSource = revokeSource
            self.notice = notice
            self.evidence = evidence
        }
    }

    public struct Interaction: Sendable {
        public let id: UUID
        public let kind: String
        public let occurredAt: Date
        public let receivedAt: Date
        public let text: String?

        public init(id: UUID, kind: String, occurredAt: Date, receivedAt: Date, text: String?) {
            self.id = id
            self.kind = kind
            self.occurredAt = occurredAt
            self.receivedAt = receivedAt
            self.text = text
        }
    }

    public struct Request: Sendable {
        public let id: UUID
        public let type: SubjectRequestType
        public let status: SubjectRequestStatus
        public let receivedAt: Date
        public let dueAt: Date

        public init(id: UUID, type: SubjectRequestType, status: SubjectRequestStatus, receivedAt: Date, dueAt: Date) {
            self.id = id
            self.type = type
            self.status = status
            self.receivedAt = receivedAt
            self.dueAt = dueAt
        }
    }

    /// One of the person's audit events with its RFC 9162 inclusion proof in the checkpoint's tree.
    public struct ProvenEvent: Sendable {
        public let record: AuditRecord
        public let leafHash: [UInt8]
        public let inclusionProof: [[UInt8]]

        public init(record: AuditRecord, leafHash: [UInt8], inclusionProof: [[UInt8]]) {
            self.record = record
            self.leafHash = leafHash
            self.inclusionProof = inclusionProof
        }
    }

    /// A row of an import that recorded one of the person's opt-ins, with its inclusion proof under the Merkle
    /// root that its batch's `import.batch_recorded` event holds (the event is among `auditEvents`).
    public struct ImportedRow: Sendable {
        public let leaf: ImportLeaf
        public let batch: Int
        public let leafIndex: Int
        public let batchSize: Int
        public let proof: [[UInt8]]

        public init(leaf: ImportLeaf, batch: Int, leafIndex: Int, batchSize: Int, proof: [[UInt8]]) {
            self.leaf = leaf
            self.batch = batch
            self.leafIndex = leafIndex
            self.batchSize = batchSize
            self.proof = proof
        }
    }

    public struct CheckpointReference: Sendable {
        public let treeSize: Int64
        public let rootHash: [UInt8]
        public let note: String
        public let verifierKey: String

        public init(treeSize: Int64, rootHash: [UInt8], note: String, verifierKey: String) {
            self.treeSize = treeSize
            self.rootHash = rootHash
            self.note = note
            self.verifierKey = verifierKey
        }
    }

    public let subject: SubjectIdentifier
    public let subjectRef: UUID
    public let controller: String
    public let firstSeenAt: Date
    public let exportedAt: Date
    public let window: ServiceWindow
    /// WhatsApp: the person's last message from an ad, and their last marketing stop in WhatsApp itself.
    public let entryPointAt: Date?
    public let marketingStoppedAt: Date?
    public let consents: [Consent]
    public let interactions: [Interaction]
    public let pendingRequests: [Request]
    public let auditEvents: [ProvenEvent]
    public let importedRows: [ImportedRow]
    public let checkpoint: CheckpointReference

    public init(
        subject: SubjectIdentifier, subjectRef: UUID, controller: String, firstSeenAt: Date, exportedAt: Date,
        window: ServiceWindow, consents: [Consent], interactions: [Interaction], pendingRequests: [Request],
        auditEvents: [ProvenEvent], checkpoint: CheckpointReference, entryPointAt: Date? = nil,
        marketingStoppedAt: Date? = nil, importedRows: [ImportedRow] = []
    ) {
        self.importedRows = importedRows
        self.entryPointAt = entryPointAt
        self.marketingStoppedAt = marketingStoppedAt
        self.subject = subject
        self.subjectRef = subjectRef
        self.controller = controller
        self.firstSeenAt = firstSeenAt
        self.exportedAt = exportedAt
        self.window = window
        self.consents = consents
        self.interactions = interactions
        self.pendingRequests = pendingRequests
        self.auditEvents = auditEvents
        self.checkpoint = checkpoint
    }
}

/// The bundle's JSON: the contract's fields (`subject`, `exportedAt`, `consents` with `notice` and `provenance`,
/// `interactions`, `auditEvents`) and what makes it complete and self-proving: every piece of evidence, each
/// consent's history, ISO/IEC TS 27560-shaped consent records, pending requests, and for each audit event an
/// inclusion proof against the signed checkpoint included beside them (docs/subject-export.md).
public enum SubjectExportDocument {
    public static let format = "consentledger.subject-export/1"

    public static func json(_ export: SubjectExport) -> JSONValue {
        let history = consentHistory(export.auditEvents)
        var window: [String: JSONValue] = ["open": .bool(export.window.isOpen(at: export.exportedAt))]
        if let closesAt = export.window.closesAt { window["closesAt"] = time(closesAt) }
        var document: [String: JSONValue] = [
            "format": .string(format),
            "subject": .string(export.subject.value),
            "channel": .string(export.subject.channel.rawValue),
            "subjectRef": .string(export.subjectRef.lowercased),
            "controller": .string(export.controller),
            "firstSeenAt": time(export.firstSeenAt),
            "exportedAt": time(export.exportedAt),
            "serviceWindow": .object(window),
            "consents": .array(export.consents.map { consent($0, history: history[$0.id] ?? []) }),
            "consentRecords": .array(export.consents.map { ConsentRecord27560.json($0, export: export) }),
            "interactions": .array(export.interactions.map(interaction)),
            "pendingRequests": .array(export.pendingRequests.map(request)),
            "auditEvents": .array(export.auditEvents.map { proven($0, treeSize: export.checkpoint.treeSize) }),
            "importedRows": .array(export.importedRows.map(imported)),
            "checkpoint": .object([
                "treeSize": .number(Double(export.checkpoint.treeSize)),
                "rootHash": .string(Data(export.checkpoint.rootHash).base64EncodedString()),
                "note": .string(export.checkpoint.note),
                "verifierKey": .string(export.checkpoint.verifierKey),
            ]),
        ]
        if let at = export.entryPointAt { document["entryPointAt"] = time(at) }
        if let at = export.marketingStoppedAt { document["marketingStoppedAt"] = time(at) }
        return .object(document)
    }

    static func time(_ date: Date) -> JSONValue { .string(RFC3339.format(date)) }

    /// An imported row: its leaf's fields as the batch committed to them, the leaf's hash, and its proof under the
    /// root in its batch's event (hex there, as the event's `root`; base64 here, as every other hash).
    static func imported(_ row: SubjectExport.ImportedRow) -> JSONValue {
        guard case .object(var members) = row.leaf.json else { return .null }
        members["batch"] = .number(Double(row.batch))
        members["leafHash"] = .string(Data(row.leaf.hash()).base64EncodedString())
        members["batchProof"] = .object([
            "leafIndex": .number(Double(row.leafIndex)), "batchSize": .number(Double(row.batchSize)),
            "hashes": .array(row.proof.map { .string(Data($0).base64EncodedString()) }),
        ])
        return .object(members)
    }

    static func notice(_ notice: Notice) -> JSONValue {
        .object([
            "id": .string(notice.id.lowercased), "text": .string(notice.text),
            "textSha256": .string(notice.textSha256), "language": .string(notice.language),
            "version": .number(Double(notice.version)), "channel": .string(notice.channel.rawValue),
        ])
    }

    /// The contract's `provenance`: where and how the opt-in was collected. The personal fields are absent once
    /// retention has purged them, and `personalDataPurged` says so.
    static func provenance(_ collection: SubjectExport.Collection) -> JSONValue {
        var members: [String: JSONValue] = [
            "collectedAt": time(collection.collectedAt), "receivedAt": time(collection.receivedAt),
            "method": .string(collection.method.rawValue),
        ]
        if let provenance = collection.provenance {
            members["pageUrl"] = .string(provenance.pageUrl)
            if let userAgent = provenance.userAgent { members["userAgent"] = .string(userAgent) }
            if let ipAddress = provenance.ipAddress { members["ipAddress"] = .string(ipAddress) }
            if let boxes = provenance.boxes { members["boxes"] = .object(boxes.mapValues(JSONValue.bool)) }
            if let origin = provenance.origin { members["origin"] = .string(origin) }
            if let source = provenance.source { members["source"] = .string(source) }
            if let claimed = provenance.claimedMethod { members["claimedMethod"] = .string(claimed.rawValue) }
        } else {
            members["personalDataPurged"] = .bool(true)
        }
        return .object(members)
    }

    static func consent(_ consent: SubjectExport.Consent, history: [JSONValue]) -> JSONValue {
        var members: [String: JSONValue] = [
            "id": .string(consent.id.lowercased), "purpose": .string(consent.purpose.key),
            "category": .string(consent.purpose.category.rawValue), "status": .string(consent.status),
            "createdAt": time(consent.createdAt),
            "notice": notice(consent.notice),
            "evidence": .array(
                consent.evidence.map { collection in
                    guard case .object(var members) = provenance(collection) else { return .null }
                    members["collectionId"] = .string(collection.id.lowercased)
                    members["notice"] = notice(collection.notice)
                    return .object(members)
                }),
            "history": .array(history),
        ]
        if let first = consent.evidence.first { members["provenance"] = provenance(first) }
        if let grantedAt = consent.grantedAt { members["grantedAt"] = time(grantedAt) }
        if let revokedAt = consent.revokedAt { members["revokedAt"] = time(revokedAt) }
        if let source = consent.revokeSource { members["revokeSource"] = .string(source.rawValue) }
        return .object(members)
    }

    /// Each consent's status changes as the audit log recorded them, oldest first, with the seq that proves each.
    static func consentHistory(_ events: [SubjectExport.ProvenEvent]) -> [UUID: [JSONValue]] {
        var history: [UUID: [JSONValue]] = [:]
        for event in events {
            guard event.record.action.hasPrefix("consent."), case .string(let text)? = event.record.data["consentId"],
                let id = UUID(uuidString: text)
            else { continue }
            history[id, default: []].append(
                .object([
                    "action": .string(event.record.action), "at": .string(event.record.at),
                    "seq": .number(Double(event.record.seq)),
                ]))
        }
        return history
    }

    static func interaction(_ interaction: SubjectExport.Interaction) -> JSONValue {
        var members: [String: JSONValue] = [
            "id": .string(interaction.id.lowercased), "direction": .string("inbound"),
            "kind": .string(interaction.kind),
            "occurredAt": time(interaction.occurredAt), "receivedAt": time(interaction.receivedAt),
        ]
        if let text = interaction.text { members["text"] = .string(text) }
        return .object(members)
    }

    static func request(_ request: SubjectExport.Request) -> JSONValue {
        .object([
            "id": .string(request.id.lowercased), "type": .string(request.type.rawValue),
            "status": .string(request.status.rawValue), "receivedAt": time(request.receivedAt),
            "dueAt": time(request.dueAt),
        ])
    }

    /// The event as the audit API serves it (so its leaf hash recomputes from these fields), with its proof.
    static func proven(_ event: SubjectExport.ProvenEvent, treeSize: Int64) -> JSONValue {
        guard case .object(var members) = event.record.apiJSON(leafHash: event.leafHash) else { return .null }
        members["inclusionProof"] = .object([
            "leafIndex": .number(Double(event.record.seq)), "treeSize": .number(Double(treeSize)),
            "hashes": .array(event.inclusionProof.map { .string(Data($0).base64EncodedString()) }),
        ])
        return .object(members)
    }
}
