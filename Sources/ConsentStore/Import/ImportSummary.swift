import ConsentCore
import Foundation

/// Where an import stands.
public enum ImportStatus: String, Sendable, Codable, CaseIterable {
    /// The file is being read.
    case receiving
    /// Read in full; its chunks are being recorded.
    case running
    /// Every row recorded.
    case completed
    /// A dry run: every row checked, nothing recorded.
    case validated
}

/// What to import and how, from the request's query (or the command's options).
public struct ImportParameters: Sendable {
    public let channel: MessageChannel
    public let noticeId: UUID
    public let format: ImportFormat
    public let dryRun: Bool

    public init(channel: MessageChannel, noticeId: UUID, format: ImportFormat, dryRun: Bool) {
        self.channel = channel
        self.noticeId = noticeId
        self.format = format
        self.dryRun = dryRun
    }

    /// The largest file an import takes.
    public static let maxFileBytes: Int64 = 1 << 30
}

/// Why an import was refused before anything of it was kept.
public enum ImportRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case noticeNotFound
    case noticeForAnotherChannel(MessageChannel)
    case malformed(MalformedImport)
    case tooLarge(limit: Int64)

    /// The one wording of the API's error messages, the console's and `consentd import`'s.
    public var description: String {
        switch self {
        case .noticeNotFound: "no notice with this id"
        case .noticeForAnotherChannel(let channel): "the notice is for the \(channel.rawValue) channel"
        case .malformed(let malformed): malformed.description
        case .tooLarge: "an import file may be at most 1 GiB"
        }
    }
}

/// An import as `GET /v1/imports/{id}` shows it: counts by outcome, never a row's identifier.
public struct ImportSummary: Sendable, Equatable {
    public let id: UUID
    public let status: ImportStatus
    public let channel: MessageChannel
    public let noticeId: UUID
    public let format: ImportFormat
    public let dryRun: Bool
    public let fileSHA256: [UInt8]?
    public let fileBytes: Int64
    /// An earlier import of the same file: every row of this one is then a duplicate.
    public let sameFileAs: UUID?
    /// Lines read (rows that passed their checks and rows that did not).
    public let rowsRead: Int
    /// Lines whose outcome is recorded; equals `rowsRead` once completed.
    public let rowsRecorded: Int
    public let counts: [ImportOutcome: Int]
    public let createdAt: Date
    public let receivedAt: Date?
    public let completedAt: Date?
}

/// A line of the rejected-rows report: every row that did not end granted or pending, by line only.
public struct ImportRejectedRow: Sendable, Equatable {
    public let line: Int
    public let outcome: ImportOutcome
    public let reason: String?
}
