import Foundation

/// One row of an import file as written, before any value is checked: the fields it names, by column.
public struct ImportRecord: Sendable, Equatable {
    /// The file's line on which the row starts (1-based; a CSV file's header is line 1).
    public let line: Int
    public let subject: String?
    public let purposes: [String]?
    public let collectedAt: String?
    public let method: String?
    public let pageUrl: String?
    public let source: String?
    public let userAgent: String?
    public let ipAddress: String?

    public init(
        line: Int, subject: String?, purposes: [String]?, collectedAt: String?, method: String? = nil,
        pageUrl: String? = nil, source: String? = nil, userAgent: String? = nil, ipAddress: String? = nil
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

    /// The columns a file may have, as the API names them; the first three are required.
    public enum Column: String, CaseIterable, Sendable {
        case subject, purposes, collectedAt, method, pageUrl, source, userAgent, ipAddress

        public static let required: [Column] = [.subject, .purposes, .collectedAt]
        public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
    }

    /// A header cell or field name as an error message may repeat it: only when it looks like a column's name
    /// (letters, digits, `_`, `-`, spaces, at most 40), since a file without its header row has personal data
    /// where the names should be; otherwise by its position.
    static func nameForMessage(_ name: String, position: Int) -> String {
        let plausible =
            (1...40).contains(name.count)
            && name.unicodeScalars.allSatisfy {
                ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
                    || $0 == " "
            } && name.unicodeScalars.first.map { $0.properties.isAlphabetic } == true
        return plausible ? "'\(name)'" : "number \(position)"
    }

    /// A purposes cell of a CSV file lists its keys separated by `;`, `|`, `,` or spaces.
    static func purposeList(_ cell: String) -> [String] {
        cell.split(whereSeparator: { $0 == ";" || $0 == "|" || $0 == "," || $0 == " " }).map(String.init)
    }

    /// Builds a record from a row's cells by column; an empty cell is an absent value.
    init(line: Int, cells: [Column: String], purposes: [String]?) {
        func value(_ column: Column) -> String? { cells[column].flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            line: line, subject: value(.subject), purposes: purposes, collectedAt: value(.collectedAt),
            method: value(.method), pageUrl: value(.pageUrl), source: value(.source), userAgent: value(.userAgent),
            ipAddress: value(.ipAddress))
    }
}

/// Why a file cannot be read at all: nothing of it is stored, and the error names the line.
public struct MalformedImport: Error, Equatable, Sendable, CustomStringConvertible {
    public let line: Int
    public let reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}

/// The formats an import is sent in, by its `Content-Type`.
public enum ImportFormat: String, Sendable, CaseIterable {
    case csv = "text/csv"
    case ndjson = "application/x-ndjson"

    /// The media type without its parameters (`text/csv; charset=utf-8` is CSV).
    public init?(contentType: String) {
        let mediaType = contentType.split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        guard let mediaType, let format = Self(rawValue: mediaType) else { return nil }
        self = format
    }
}
