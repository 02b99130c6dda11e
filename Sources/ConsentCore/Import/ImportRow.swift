import Foundation

/// A row of an import that passed every check that needs no database: the identifier normalised for its channel,
/// the purposes well formed and covered by the import's notice, the collection time in the past, the provenance
/// fields within their limits. What the store records from it follows the rules of a single opt-in.
public struct ImportRow: Sendable, Equatable {
    public let line: Int
    /// The normalised identifier (`SubjectIdentifier.value`): personal data, sealed wherever it is kept.
    public let subject: String
    public let purposes: [String]
    public let collectedAt: Date
    /// The method the file names (`import` when it names none). The opt-in is recorded as an `import` all the
    /// same; this one is kept in its provenance (`Provenance.claimedMethod`).
    public let method: CollectionMethod
    public let pageUrl: String?
    public let source: String?
    public let userAgent: String?
    public let ipAddress: String?

    public static let maxSourceLength = 200

    public init(
        line: Int, subject: String, purposes: [String], collectedAt: Date, method: CollectionMethod, pageUrl: String?,
        source: String?, userAgent: String?, ipAddress: String?
    ) {
        self.line = line
        self.subject = subject
        self.purposes = purposes
        self.collectedAt = collectedAt
        self.method = method
        self.pageUrl = pageUrl
        self.source = source
        self.userAgent = userAgent
        self.ipAddress = ipAddress
    }

    /// What the row's opt-in would record: the identifier on `channel` and its provenance.
    public func subject(on channel: MessageChannel) -> SubjectIdentifier? {
        try? SubjectIdentifier(subject, channel: channel)
    }

    public var provenance: Provenance {
        Provenance(
            pageUrl: pageUrl ?? "", userAgent: userAgent, ipAddress: ipAddress, source: source,
            claimedMethod: method == .import ? nil : method)
    }
}

/// A row that cannot be recorded, and why, by its line only: the report never repeats the identifier.
public struct ImportRejection: Error, Sendable, Equatable {
    public let line: Int
    public let reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
}

/// Checks rows against the import's channel and notice; pure, so every rule has a unit test.
public struct ImportRowValidator: Sendable {
    public let channel: MessageChannel
    /// The purposes the import's notice covers.
    public let noticePurposes: Set<String>
    public let now: Date
    /// How far ahead of this server's clock a collection time may be (the sender's clock may run fast).
    public static let maxClockSkew: TimeInterval = 5 * 60
    static let earliest = Date(timeIntervalSince1970: 946_684_800)  // 2000-01-01

    public init(channel: MessageChannel, noticePurposes: Set<String>, now: Date) {
        self.channel = channel
        self.noticePurposes = noticePurposes
        self.now = now
    }

    private struct ProvenanceFields: Equatable {
        let pageUrl: String
        let userAgent: String?
        let ipAddress: String?
    }
    private var lastProvenance: (fields: ProvenanceFields, value: Provenance)?

    public mutating func validate(_ record: ImportRecord) -> Result<ImportRow, ImportRejection> {
        func reject(_ reason: String) -> Result<ImportRow, ImportRejection> {
            .failure(ImportRejection(line: record.line, reason: reason))
        }
        guard let raw = record.subject else { return reject("'subject' is empty") }
        let subject: SubjectIdentifier
        do {
            subject = try SubjectIdentifier(raw, channel: channel)
        } catch {
            return reject("'subject' is \(error.description)")
        }
        guard let purposes = record.purposes, !purposes.isEmpty else { return reject("'purposes' is empty") }
        guard purposes.count <= 64 else { return reject("'purposes' names more than 64 purposes") }
        // The cell is not repeated: a shifted column can put an address or a number here.
        for (index, key) in purposes.enumerated() where !Purpose.isValidKey(key) {
            return reject("'purposes' item \(index + 1) is not a purpose key (a-z, 0-9, _)")
        }
        guard Set(purposes).count == purposes.count else { return reject("'purposes' names a purpose twice") }
        let uncovered = purposes.filter { !noticePurposes.contains($0) }
        guard uncovered.isEmpty else {
            return reject("the notice does not cover \(uncovered.joined(separator: ", "))")
        }
        guard let text = record.collectedAt else { return reject("'collectedAt' is empty") }
        guard let collectedAt = RFC3339.parse(text) else {
            return reject("'collectedAt' is not an RFC 3339 time such as 2024-05-01T12:00:00Z")
        }
        guard collectedAt <= now.addingTimeInterval(Self.maxClockSkew) else {
            return reject("'collectedAt' is in the future")
        }
        guard collectedAt >= Self.earliest else { return reject("'collectedAt' is before the year 2000") }
        var method = CollectionMethod.import
        if let name = record.method {
            guard let named = CollectionMethod(rawValue: name) else {
                let names = CollectionMethod.allCases.map(\.rawValue).joined(separator: ", ")
                return reject("'method' is not one of \(names)")
            }
            method = named
        }
        // The provenance fields are checked as an opt-in's are; a legacy row often has no page, so the page is
        // checked only when given (the placeholder below is never stored).
        var provenance: Provenance?
        if record.pageUrl != nil || record.userAgent != nil || record.ipAddress != nil {
            do {
                let fields = ProvenanceFields(
                    pageUrl: record.pageUrl ?? "https://import.invalid/", userAgent: record.userAgent,
                    ipAddress: record.ipAddress)
                // A file's rows mostly share a page: the last fields checked are not checked again.
                if let last = lastProvenance, last.fields == fields {
                    provenance = last.value
                } else {
                    let checked = try Provenance.validated(
                        pageUrl: fields.pageUrl, userAgent: fields.userAgent, ipAddress: fields.ipAddress)
                    lastProvenance = (fields, checked)
                    provenance = checked
                }
            } catch {
                switch error {
                case .pageUrl(let why): return reject("'pageUrl' \(why)")
                case .userAgent(let why): return reject("'userAgent' \(why)")
                case .ipAddress(let why): return reject("'ipAddress' \(why)")
                }
            }
        }
        if let source = record.source {
            guard source.count <= ImportRow.maxSourceLength,
                !source.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else { return reject("'source' must be at most \(ImportRow.maxSourceLength) printable characters") }
        }
        return .success(
            ImportRow(
                line: record.line, subject: subject.value, purposes: purposes, collectedAt: collectedAt, method: method,
                pageUrl: record.pageUrl == nil ? nil : provenance?.pageUrl, source: record.source,
                userAgent: provenance?.userAgent, ipAddress: provenance?.ipAddress))
    }
}
