import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// The import being recorded, as its worker knows it.
struct ImportJob: Sendable {
    let id: UUID
    let tenantId: UUID
    let channel: MessageChannel
    let noticeId: UUID
    /// The API key the import was sent with (or, from the command line, the import's own id).
    let recordedBy: UUID
    let actor: String
    /// The lease the worker holds it under (`ImportWorker`).
    let holder: UUID

    var caller: CallerIdentity { .channel(actor, tenantId: tenantId, vouchedBy: recordedBy) }
}

/// What recording a chunk did, line by line, and the subjects whose consent state it changed; no chunk when none
/// was left to take.
struct ImportChunkOutcome: ConsentStateChanging {
    let seq: Int?
    let results: [ImportLineResult]
    let changes: [ConsentChange]

    static let none = ImportChunkOutcome(seq: nil, results: [], changes: [])
}

struct ImportLineResult: Sendable, Equatable {
    let line: Int
    var outcome: ImportOutcome
    var reason: String?
    var subjectId: UUID?
    var rowKey: [UInt8]?
}

extension ConsentLedger {
    /// Records one chunk of an import in one transaction: its rows' opt-ins by the rules of a single opt-in, a
    /// row of `import_rows` per line, and one `import.batch_recorded` event with the Merkle root over the lines.
    ///
    /// People the tenant does not hold yet (nearly all rows of a first import) are recorded together by
    /// `app_record_new_opt_ins`, without an event each: the batch event commits to them. A row for someone held
    /// is first looked up by its row key (imported before: `duplicate`), and otherwise recorded by
    /// `app_record_opt_in`, which reconciles it with what the person has (their stops make it `superseded`, their
    /// objection `suppressed`) and writes that opt-in's own events as well.
    ///
    /// The chunk is the import's next one that no other transaction holds (`FOR UPDATE SKIP LOCKED`), so that
    /// workers record an import's chunks side by side, each exactly once: recording deletes it, and a transaction
    /// that fails leaves it, unlocked, for the next.
    func importNextChunk(of job: ImportJob, key: ImportKey) -> UnitOfWork<ImportChunkOutcome> {
        UnitOfWork(tenantId: job.tenantId) { [keyring, suppression, pendingLifetime] connection, logger in
            let next = try await connection.closeSafeQuery(
                """
                SELECT seq, sealed FROM import_chunks WHERE import_id = \(job.id)
                ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
                """, logger: logger
            ).decode((Int32, ByteBuffer).self).array().first
            guard let (seq, sealed) = next else { return .none }
            let chunk = try ImportChunk.open(
                Array(sealed.readableBytesView), key: key.key, importId: job.id, seq: Int(seq))
            var recorder = ChunkRecorder(
                job: job, keyring: keyring, suppression: suppression, pendingLifetime: pendingLifetime)
            return try await recorder.record(chunk, seq: Int(seq), on: connection, logger: logger)
        }
    }
}

/// The steps of `importNextChunk`, in the order they run.
private struct ChunkRecorder {
    let job: ImportJob
    let keyring: TenantKeyring
    let suppression: Bool
    let pendingLifetime: TimeInterval
    var results: [Int: ImportLineResult] = [:]
    var changes: [ConsentChange] = []

    init(job: ImportJob, keyring: TenantKeyring, suppression: Bool, pendingLifetime: TimeInterval) {
        self.job = job
        self.keyring = keyring
        self.suppression = suppression
        self.pendingLifetime = pendingLifetime
    }

    /// A row that passed its checks, with the person's keyed hash.
    struct Entry {
        let row: ImportRow
        let optIn: OptIn
        let blindIndex: [UInt8]
    }

    mutating func record(_ chunk: ImportChunk, seq: Int, on connection: PostgresConnection, logger: Logger)
        async throws -> ImportChunkOutcome
    {
        for rejection in chunk.rejections {
            results[rejection.line] = ImportLineResult(
                line: rejection.line, outcome: .invalid, reason: rejection.reason)
        }
        let blindKey = try await keyring.tenantKey(.blindIndex, tenantId: job.tenantId, on: connection, logger: logger)
        // Loaded so that the new people's opt-ins can be sealed without a connection (`ConsentLedger.newOptIn`).
        _ = try await keyring.tenantKey(.suppression, tenantId: job.tenantId, on: connection, logger: logger)
        let entries = try distinctEntries(chunk.rows, blindKey: blindKey)
        let held = try await subjects(entries.map(\.blindIndex), on: connection, logger: logger)
        let later = try await recordNewPeople(
            entries.filter { held[$0.blindIndex] == nil }, on: connection, logger: logger)
        try await recordHeldPeople(
            entries.filter { held[$0.blindIndex] != nil } + later, on: connection, logger: logger)
        return try await finish(chunk, seq: seq, on: connection, logger: logger)
    }

    /// The rows to record; a row that repeats an earlier row of the chunk (same person, notice, method, time and
    /// purposes) is a duplicate of it.
    private mutating func distinctEntries(_ rows: [ImportRow], blindKey: SymmetricKey) throws -> [Entry] {
        struct Repeat: Hashable {
            let blindIndex: [UInt8]
            let method: CollectionMethod
            let collectedAt: Date
            let purposes: [String]
        }
        var seen: Set<Repeat> = []
        var entries: [Entry] = []
        for row in rows {
            guard let subject = row.subject(on: job.channel) else {
                results[row.line] = ImportLineResult(
                    line: row.line, outcome: .invalid, reason: "'subject' is not valid")
                continue
            }
            let blindIndex = BlindIndex.compute(subject, key: blindKey)
            let repeated = Repeat(
                blindIndex: blindIndex, method: row.method, collectedAt: row.collectedAt,
                purposes: row.purposes.sorted())
            guard seen.insert(repeated).inserted else {
                results[row.line] = ImportLineResult(line: row.line, outcome: .duplicate)
                continue
            }
            // Recorded as an `import` whatever method the file names: a claimed checkbox must not pass a stop or
            // an objection that an import may not (0012's rules); the claim is kept in the provenance.
            let optIn = OptIn(
                subject: subject, purposes: row.purposes, noticeId: job.noticeId, method: .import,
                collectedAt: row.collectedAt, provenance: row.provenance)
            entries.append(Entry(row: row, optIn: optIn, blindIndex: blindIndex))
        }
        return entries
    }

    /// The subjects the tenant holds among these blind indexes; `locking` takes them FOR KEY SHARE.
    private func subjects(
        _ blindIndexes: [[UInt8]], locking: Bool = false, on connection: PostgresConnection, logger: Logger
    ) async throws -> [[UInt8]: UUID] {
        guard !blindIndexes.isEmpty else { return [:] }
        let rows = try await connection.closeSafeQuery(
            """
            SELECT blind_index, id FROM subjects
            WHERE channel = \(job.channel.rawValue) AND blind_index = ANY (\(blindIndexes.map { ByteBuffer(bytes: $0) }))
              AND erased_at IS NULL
            \(unescaped: locking ? "FOR KEY SHARE" : "")
            """, logger: logger
        ).decode((ByteBuffer, UUID).self).array()
        return Dictionary(rows.map { (Array($0.0.readableBytesView), $0.1) }, uniquingKeysWith: { first, _ in first })
    }

    /// Records the people not held yet in one statement; answers the entries it left to be recorded one by one.
    private mutating func recordNewPeople(_ entries: [Entry], on connection: PostgresConnection, logger: Logger)
        async throws -> [Entry]
    {
        guard !entries.isEmpty else { return [] }
        var items: [NewOptIn] = []
        for entry in entries {
            guard
                let item = try ConsentLedger.newOptIn(
                    entry.optIn, caller: job.caller, keyring: keyring, suppression: suppression)
            else { throw TenantKeyring.KeyUnreadable(what: "tenant's keys (not in memory for the import)") }
            items.append(item)
        }
        // In a savepoint: a group that lost a race with a suppression entry or a deadlock is answered `retry`
        // throughout, and its failed statement must not take the chunk's transaction with it.
        try await connection.closeSafeQuery("SAVEPOINT import_group", logger: logger)
        let answers = try await ConsentLedger.recordNewOptIns(
            items, tenantId: job.tenantId, auditEach: false, on: connection, logger: logger)
        do {
            try await connection.closeSafeQuery("RELEASE SAVEPOINT import_group", logger: logger)
        } catch  where DatabaseErrors.sqlState(error) == "25P02" {
            try await connection.closeSafeQuery("ROLLBACK TO SAVEPOINT import_group", logger: logger)
        }
        var later: [Entry] = []
        for (entry, (item, answer)) in zip(entries, zip(items, answers)) {
            let line = entry.row.line
            switch answer {
            case .recorded(let outcomes, let position):
                results[line] = ImportLineResult(
                    line: line, outcome: ImportOutcome.of(outcomes.map(Self.status)), subjectId: item.subjectId,
                    rowKey: rowKey(entry, subjectId: item.subjectId))
                changes.append(ConsentChange(key: cacheKey(entry), position: position))
            case .refused(.suppressed):
                results[line] = ImportLineResult(line: line, outcome: .suppressed, reason: "on the suppression list")
            case .refused(let error):
                results[line] = ImportLineResult(line: line, outcome: .invalid, reason: Self.reason(error))
            case .retry:
                later.append(entry)
            }
        }
        return later
    }

    /// Records the rows of people held (or made by an earlier row of this chunk) one by one, after their row keys
    /// found no earlier import of the same row.
    private mutating func recordHeldPeople(_ entries: [Entry], on connection: PostgresConnection, logger: Logger)
        async throws
    {
        guard !entries.isEmpty else { return }
        // Held with FOR KEY SHARE: an erasure waits for this chunk, and then clears the rows it writes for them.
        let held = try await subjects(entries.map(\.blindIndex), locking: true, on: connection, logger: logger)
        var keyed: [(Entry, UUID?, [UInt8]?)] = []
        for entry in entries {
            let subjectId = held[entry.blindIndex]
            keyed.append((entry, subjectId, subjectId.map { rowKey(entry, subjectId: $0) }))
        }
        // Each row key is taken (a transaction-level advisory lock, in one order) before it is looked up: another
        // chunk or import recording the same row waits for this one to commit and then finds it.
        let keys = keyed.compactMap(\.2)
        if !keys.isEmpty {
            try await connection.closeSafeQuery(
                """
                SELECT count(pg_advisory_xact_lock(x.h)) FROM (
                    SELECT DISTINCT hashtextextended(encode(k, 'hex'), \(Self.rowKeyLockSeed)) AS h
                    FROM unnest(\(keys.map { ByteBuffer(bytes: $0) })::bytea[]) AS k ORDER BY h
                ) x
                """, logger: logger)
        }
        let known = try await importedBefore(keys, on: connection, logger: logger)
        for (entry, subjectId, key) in keyed {
            let line = entry.row.line
            if let key, known.contains(key) {
                results[line] = ImportLineResult(line: line, outcome: .duplicate, subjectId: subjectId, rowKey: key)
                continue
            }
            // Each opt-in in a savepoint: a refusal (raised by app_record_opt_in) undoes that row alone.
            try await connection.closeSafeQuery("SAVEPOINT import_row", logger: logger)
            do {
                let result = try await ConsentLedger.recordOptIn(
                    entry.optIn, blindIndex: entry.blindIndex, tenantId: job.tenantId, caller: job.caller,
                    keyring: keyring, suppression: suppression, pendingLifetime: pendingLifetime, on: connection,
                    logger: logger)
                try await connection.closeSafeQuery("RELEASE SAVEPOINT import_row", logger: logger)
                let subject = try await subjects([entry.blindIndex], on: connection, logger: logger)[entry.blindIndex]
                results[line] = ImportLineResult(
                    line: line, outcome: ImportOutcome.of(result.outcomes.map(Self.status)), subjectId: subject,
                    rowKey: subject.map { rowKey(entry, subjectId: $0) })
                changes.append(result.change)
            } catch let error as ConsentWriteError {
                try await connection.closeSafeQuery("ROLLBACK TO SAVEPOINT import_row", logger: logger)
                results[line] =
                    error == .suppressed
                    ? ImportLineResult(line: line, outcome: .suppressed, reason: "on the suppression list")
                    : ImportLineResult(line: line, outcome: .invalid, reason: Self.reason(error))
            }
        }
    }

    /// The row keys among these that an earlier import recorded.
    private func importedBefore(_ keys: [[UInt8]], on connection: PostgresConnection, logger: Logger)
        async throws -> Set<[UInt8]>
    {
        guard !keys.isEmpty else { return [] }
        let rows = try await connection.closeSafeQuery(
            """
            SELECT row_key FROM import_rows
            WHERE tenant_id = \(job.tenantId) AND row_key = ANY (\(keys.map { ByteBuffer(bytes: $0) }))
              AND outcome <> 'duplicate'
            """, logger: logger
        ).decode(ByteBuffer.self).array()
        return Set(rows.map { Array($0.readableBytesView) })
    }

    /// Every line's row, its leaf, the batch event with the root, the counts; the chunk deleted. An absent reason,
    /// subject or row key goes as an empty value (arrays of the driver take no NULL elements).
    private func finish(_ chunk: ImportChunk, seq: Int, on connection: PostgresConnection, logger: Logger)
        async throws -> ImportChunkOutcome
    {
        let lines = results.values.sorted { $0.line < $1.line }
        guard lines.count == chunk.count else {
            throw UnreadableGroupRows(why: "an import chunk of \(chunk.count) lines answered \(lines.count)")
        }
        let leaves = lines.map {
            ImportLeaf(
                importId: job.id, line: $0.line, outcome: $0.outcome, subjectRef: $0.subjectId, rowKey: $0.rowKey
            ).hash()
        }
        try await connection.closeSafeQuery(
            """
            SELECT app_record_import_batch(
                \(job.tenantId), \(job.id), \(Int32(seq)), \(job.holder), \(job.actor), \(lines.map { Int32($0.line) }),
                \(lines.map(\.outcome.rawValue)), \(lines.map { $0.reason ?? "" }), \(leaves.map { ByteBuffer(bytes: $0) }),
                \(lines.map { $0.subjectId?.lowercased ?? "" }), \(lines.map { ByteBuffer(bytes: $0.rowKey ?? []) }),
                \(ByteBuffer(bytes: ImportLeaf.root(leaves))))
            """, logger: logger)
        return ImportChunkOutcome(seq: seq, results: lines, changes: changes)
    }

    /// The second key of `hashtextextended` for row-key locks, apart from any other advisory lock's.
    static let rowKeyLockSeed: Int64 = 0x696D_706F_7274  // "import"

    private func rowKey(_ entry: Entry, subjectId: UUID) -> [UInt8] {
        ImportRowKey.compute(
            subjectId: subjectId, noticeId: job.noticeId, method: entry.row.method, collectedAt: entry.row.collectedAt,
            purposes: entry.row.purposes)
    }

    private func cacheKey(_ entry: Entry) -> ConsentStateCache.Key {
        ConsentStateCache.Key(tenantId: job.tenantId, channel: job.channel, blindIndex: entry.blindIndex)
    }

    private static func status(_ outcome: OptInPurposeOutcome) -> ImportPurposeStatus {
        switch outcome {
        case .suppressed: .suppressed
        case .recorded(let consent):
            switch consent.status {
            case .granted: .granted
            case .pending: .pending
            // An opt-in answers granted, pending or superseded only; the other two are a later state of a consent.
            case .superseded, .withdrawn, .expired: .superseded
            }
        }
    }

    private static func reason(_ error: ConsentWriteError) -> String {
        switch error {
        case .noticeNotFound: "the notice does not exist"
        case .noticeForAnotherChannel(let channel): "the notice is for \(channel.rawValue)"
        case .purposesNotInNotice(let keys): "the notice does not cover \(keys.joined(separator: ", "))"
        case .unknownPurposes(let keys): "no purpose \(keys.joined(separator: ", ")) exists"
        case .suppressed: "on the suppression list"
        }
    }
}
