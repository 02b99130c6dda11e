import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// A withdrawal ready for `app_record_withdrawals` (migration 0016): what `app_revoke` is given.
struct GroupedWithdrawal: Sendable {
    let channel: MessageChannel
    let blindIndex: [UInt8]
    /// Nil: every purpose on the channel.
    let purposes: [String]?
    let source: RevocationSource
    let actor: String
    let keyId: UUID
    /// Given for a withdrawal of everything when suppression is on: someone not held is then kept on the list.
    let suppressionHash: [UInt8]?
}

/// What `app_record_withdrawals` did with one item.
enum GroupedWithdrawalAnswer: Sendable, Equatable {
    case withdrawn([RevokedConsent], position: Int64)
    /// The refusal app_revoke would have raised (unknown purposes); nothing was written.
    case refused(ConsentWriteError)
    /// The person is named by an earlier withdrawal of the group; nothing was written, and it is made alone.
    case retry

    /// One row: 1-based item, refusal, and for a written item its position and a withdrawn consent (nil when
    /// nothing was withdrawn).
    typealias Row = (
        item: Int32, refusal: String?, position: Int64?, consentId: UUID?, purpose: String?, revokedAt: Date?
    )

    /// The answers to `count` items from the statement's rows, which come in item order.
    static func answers(count: Int, rows: [Row]) throws -> [GroupedWithdrawalAnswer] {
        var revoked: [[RevokedConsent]] = Array(repeating: [], count: count)
        var positions: [Int64?] = Array(repeating: nil, count: count)
        var refusals: [GroupedWithdrawalAnswer?] = Array(repeating: nil, count: count)
        for row in rows {
            let index = Int(row.item) - 1
            guard revoked.indices.contains(index) else {
                throw UnreadableGroupRows(why: "item \(row.item) of \(count)")
            }
            if let refusal = row.refusal {
                guard let answer = Self.refusal(refusal) else {
                    throw UnreadableGroupRows(why: "refusal '\(refusal)'")
                }
                refusals[index] = answer
                continue
            }
            guard let position = row.position else {
                throw UnreadableGroupRows(why: "a withdrawal of item \(row.item) without a position")
            }
            positions[index] = position
            if let id = row.consentId, let purpose = row.purpose, let revokedAt = row.revokedAt {
                revoked[index].append(RevokedConsent(id: id, purpose: purpose, revokedAt: revokedAt))
            }
        }
        return try (0..<count).map { index in
            if let refusal = refusals[index] { return refusal }
            guard let position = positions[index] else {
                throw UnreadableGroupRows(why: "no row for item \(index + 1)")
            }
            return .withdrawn(revoked[index], position: position)
        }
    }

    /// `CL012:<keys>` or `retry`.
    static func refusal(_ text: String) -> GroupedWithdrawalAnswer? {
        if text == "retry" { return .retry }
        guard text.hasPrefix("CL012:") else { return nil }
        let list = text.dropFirst("CL012:".count).split(separator: ",").map(String.init)
        return list.isEmpty ? nil : .refused(.unknownPurposes(list))
    }
}

extension ConsentLedger {
    /// Withdraws a group of withdrawals for one tenant in one statement, answering each in order. A group that lost
    /// a deadlock wrote nothing and is answered `retry` throughout.
    static func recordWithdrawals(
        _ items: [GroupedWithdrawal], tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> [GroupedWithdrawalAnswer] {
        var purposeItems: [Int32] = []
        var purposes: [String] = []
        for (index, item) in items.enumerated() {
            let named = item.purposes ?? []
            purposeItems += Array(repeating: Int32(index + 1), count: named.count)
            purposes += named
        }
        // Someone without a suppression hash is given an empty one, which the statement takes for none.
        let rows: [GroupedWithdrawalAnswer.Row]
        do {
            rows = try await connection.closeSafeQuery(
                """
                SELECT item, refusal, change_position, consent_id, purpose, revoked_at
                FROM app_record_withdrawals(
                    \(tenantId), \(items.map(\.channel.rawValue)), \(items.map { ByteBuffer(bytes: $0.blindIndex) }),
                    \(items.map { $0.purposes == nil }), \(items.map(\.source.rawValue)), \(items.map(\.actor)),
                    \(items.map(\.keyId)), \(items.map { ByteBuffer(bytes: $0.suppressionHash ?? []) }), \(purposeItems),
                    \(purposes))
                """, logger: logger
            ).decode((Int32, String?, Int64?, UUID?, String?, Date?).self).array().map {
                (item: $0.0, refusal: $0.1, position: $0.2, consentId: $0.3, purpose: $0.4, revokedAt: $0.5)
            }
        } catch  where GroupRetry.retriesEveryItem(error) {
            return items.map { _ in .retry }
        }
        return try GroupedWithdrawalAnswer.answers(count: items.count, rows: rows)
    }

    /// The withdrawal as a member of a group; nil when it cannot be (no API key to record it under, or the
    /// tenant's keys not in memory), and it is then made alone.
    static func groupedWithdrawal(
        _ subject: SubjectIdentifier, purposes: [String]?, source: RevocationSource, caller: CallerIdentity,
        keyring: TenantKeyring, suppression: Bool
    ) -> GroupedWithdrawal? {
        guard let keyId = caller.keyId,
            let blindKey = keyring.loadedKey(.blindIndex, tenantId: caller.tenantId),
            let suppressionKey = keyring.loadedKey(.suppression, tenantId: caller.tenantId)
        else { return nil }
        // As `revoke`: only a withdrawal of everything can put someone not held on the suppression list.
        let hash = suppression && purposes == nil ? SuppressionHash.compute(subject, key: suppressionKey) : nil
        return GroupedWithdrawal(
            channel: subject.channel, blindIndex: BlindIndex.compute(subject, key: blindKey), purposes: purposes,
            source: source, actor: caller.actor, keyId: keyId, suppressionHash: hash)
    }
}
