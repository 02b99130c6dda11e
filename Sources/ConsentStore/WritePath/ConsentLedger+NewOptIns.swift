import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// An opt-in of someone the service takes to be new, sealed and ready for `app_record_new_opt_ins` (migration
/// 0015): a subject id and data key made here, the identifier and provenance sealed under that key.
struct NewOptIn: Sendable {
    let channel: MessageChannel
    let blindIndex: [UInt8]
    let subjectId: UUID
    let identifier: [UInt8]
    let wrappedKey: [UInt8]
    let masterKeyId: [UInt8]
    /// Nil when suppression is off: the statement then finds no entry for the person.
    let suppressionHash: [UInt8]?
    let noticeId: UUID
    let method: CollectionMethod
    let collectedAt: Date
    let collectionId: UUID
    let recordedBy: UUID
    let provenance: [UInt8]
    let actor: String
    let purposes: [String]
    let consentIds: [UUID]
}

/// The failures of a group's statement after which each of its writes is made alone: the statement rolled back
/// whole, and nothing about any one write made it fail.
enum GroupRetry {
    static func retriesEveryItem(_ error: any Error) -> Bool {
        switch DatabaseErrors.sqlState(error) {
        // CL016: a suppression entry changed between the group's two reads (0015). 40P01: a deadlock with another
        // group or write, and 40001: a serialization failure, both rolled back.
        case "CL016", "40P01", "40001": true
        default: false
        }
    }
}

/// A group statement answered rows that do not fit its items.
struct UnreadableGroupRows: Error, CustomStringConvertible {
    let why: String
    var description: String { "a group statement answered rows that cannot be read: \(why)" }
}

/// What `app_record_new_opt_ins` did with one item.
enum NewOptInAnswer: Sendable, Equatable {
    /// Per purpose in the order given, and the change's position.
    case recorded([OptInPurposeOutcome], position: Int64)
    /// The refusal app_record_opt_in would have raised; nothing was written.
    case refused(ConsentWriteError)
    /// Held already, named twice in the group, or the group lost a race with a suppression entry: nothing was
    /// written, and the opt-in is recorded alone (`ConsentLedger.recordOptIn`).
    case retry

    /// One row of the statement: 1-based item, refusal, and for a recorded purpose its consent (nil when
    /// suppressed), purpose, status, grant time and the item's change position.
    typealias Row = (
        item: Int32, refusal: String?, consentId: UUID?, purpose: String?, status: String?,
        grantedAt: Date?, position: Int64?
    )

    /// The answers to `count` items from the statement's rows, which come in item order.
    static func answers(count: Int, rows: [Row]) throws -> [NewOptInAnswer] {
        var outcomes: [[OptInPurposeOutcome]] = Array(repeating: [], count: count)
        var positions: [Int64?] = Array(repeating: nil, count: count)
        var refusals: [NewOptInAnswer?] = Array(repeating: nil, count: count)
        for row in rows {
            let index = Int(row.item) - 1
            guard outcomes.indices.contains(index) else {
                throw UnreadableGroupRows(why: "item \(row.item) of \(count)")
            }
            if let refusal = row.refusal {
                guard let answer = Self.refusal(refusal) else { throw UnreadableGroupRows(why: "refusal '\(refusal)'") }
                refusals[index] = answer
                continue
            }
            guard let purpose = row.purpose, let statusText = row.status, let position = row.position else {
                throw UnreadableGroupRows(why: "a recorded row of item \(row.item) without purpose, status or position")
            }
            positions[index] = position
            if let id = row.consentId {
                guard let status = ConsentStatus(rawValue: statusText) else {
                    throw UnreadableGroupRows(why: "status '\(statusText)'")
                }
                outcomes[index].append(
                    .recorded(RecordedConsent(id: id, purpose: purpose, status: status, grantedAt: row.grantedAt)))
            } else {
                outcomes[index].append(.suppressed(purpose: purpose))
            }
        }
        return try (0..<count).map { index in
            if let refusal = refusals[index] { return refusal }
            guard let position = positions[index] else {
                throw UnreadableGroupRows(why: "no row for item \(index + 1)")
            }
            return .recorded(outcomes[index], position: position)
        }
    }

    /// `CL010`, `CL011:<channel>`, `CL012:<keys>`, `CL013:<keys>`, `CL015` or `retry`: the SQLSTATEs that
    /// app_record_opt_in raises, with the message it gives them.
    static func refusal(_ text: String) -> NewOptInAnswer? {
        let (code, detail) =
            text.firstIndex(of: ":").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) }
            ?? (text, "")
        let list = detail.split(separator: ",").map(String.init)
        switch code {
        case "retry" where detail.isEmpty: return .retry
        case "CL010" where detail.isEmpty: return .refused(.noticeNotFound)
        case "CL011": return MessageChannel(rawValue: detail).map { .refused(.noticeForAnotherChannel($0)) }
        case "CL012" where !list.isEmpty: return .refused(.unknownPurposes(list))
        case "CL013" where !list.isEmpty: return .refused(.purposesNotInNotice(list))
        case "CL015" where detail.isEmpty: return .refused(.suppressed)
        default: return nil
        }
    }
}

extension ConsentLedger {
    /// Records a group of new people's opt-ins for one tenant in one statement, answering each in order. A group
    /// that raced a suppression entry (CL016), or lost a deadlock, wrote nothing and is answered `retry` throughout.
    /// `auditEach` false leaves the audit events to the caller (an import's chunk commits to its rows by one event).
    static func recordNewOptIns(
        _ items: [NewOptIn], tenantId: UUID, auditEach: Bool = true, on connection: PostgresConnection, logger: Logger
    ) async throws -> [NewOptInAnswer] {
        var purposeItems: [Int32] = []
        var purposes: [String] = []
        var consentIds: [UUID] = []
        for (index, item) in items.enumerated() {
            purposeItems += Array(repeating: Int32(index + 1), count: item.purposes.count)
            purposes += item.purposes
            consentIds += item.consentIds
        }
        // A person without a suppression hash is looked up under one no entry can have (entries hold 32 bytes).
        let rows: [NewOptInAnswer.Row]
        do {
            rows = try await connection.closeSafeQuery(
                """
                SELECT item, refusal, consent_id, purpose, status, granted_at, change_position
                FROM app_record_new_opt_ins(
                    \(tenantId), \(items.map(\.channel.rawValue)), \(items.map { ByteBuffer(bytes: $0.blindIndex) }),
                    \(items.map(\.subjectId)), \(items.map { ByteBuffer(bytes: $0.identifier) }),
                    \(items.map { ByteBuffer(bytes: $0.wrappedKey) }), \(items.map { ByteBuffer(bytes: $0.masterKeyId) }),
                    \(items.map { ByteBuffer(bytes: $0.suppressionHash ?? []) }), \(items.map(\.noticeId)),
                    \(items.map(\.method.recordedStatus.rawValue)), \(items.map(\.method.rawValue)), \(items.map(\.collectedAt)),
                    \(items.map(\.collectionId)), \(items.map(\.recordedBy)), \(items.map { ByteBuffer(bytes: $0.provenance) }),
                    \(items.map(\.actor)), \(purposeItems), \(purposes), \(consentIds), \(auditEach))
                """, logger: logger
            ).decode((Int32, String?, UUID?, String?, String?, Date?, Int64?).self).array().map {
                (
                    item: $0.0, refusal: $0.1, consentId: $0.2, purpose: $0.3, status: $0.4, grantedAt: $0.5,
                    position: $0.6
                )
            }
        } catch  where GroupRetry.retriesEveryItem(error) {
            return items.map { _ in .retry }
        }
        return try NewOptInAnswer.answers(count: items.count, rows: rows)
    }

    /// The opt-in as a new person's, for a group (`WriteGroups.newOptIns`); nil when it cannot be (no API key to
    /// record it under, or the tenant's keys not in memory), and it is then recorded alone.
    static func newOptIn(
        _ optIn: OptIn, caller: CallerIdentity, keyring: TenantKeyring, suppression: Bool
    ) throws -> NewOptIn? {
        guard let recordedBy = caller.keyId,
            let blindKey = keyring.loadedKey(.blindIndex, tenantId: caller.tenantId),
            let suppressionKey = keyring.loadedKey(.suppression, tenantId: caller.tenantId)
        else { return nil }
        let subjectId = UUID()
        let (dataKey, wrapped, masterKeyId) = keyring.newSubjectKey(subjectId: subjectId)
        let handle = SubjectHandle(id: subjectId, dataKey: dataKey)
        let collectionId = UUID()
        return NewOptIn(
            channel: optIn.subject.channel, blindIndex: BlindIndex.compute(optIn.subject, key: blindKey),
            subjectId: subjectId, identifier: handle.seal(Array(optIn.subject.value.utf8), context: "identifier"),
            wrappedKey: wrapped, masterKeyId: masterKeyId,
            suppressionHash: suppression ? SuppressionHash.compute(optIn.subject, key: suppressionKey) : nil,
            noticeId: optIn.noticeId, method: optIn.method,
            collectedAt: optIn.collectedAt, collectionId: collectionId, recordedBy: recordedBy,
            provenance: handle.seal(
                try JSONEncoder().encode(optIn.provenance), context: "collection:\(collectionId.lowercased)"),
            actor: caller.actor, purposes: optIn.purposes, consentIds: optIn.purposes.map { _ in UUID() })
    }
}
