import Crypto
import Foundation

/// A message template as registered with the platform: its wording is immutable (a new wording is a new version
/// under the same name and language), its review status and category are the platform's to change.
public struct MessageTemplate: Sendable, Equatable {
    public let id: UUID
    public let name: String
    public let language: String
    public let version: Int
    public let category: PurposeCategory
    public let purpose: String
    public let body: String
    public let bodySha256: String
    public let header: TemplateHeader?
    public let buttons: [TemplateButton]
    public let status: TemplateStatus
    public let statusReason: String?
    /// The platform's quality rating (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`), when it sent one.
    public let quality: String?
    public let findings: [TemplateLintFinding]
    public let createdAt: Date

    public init(
        id: UUID, name: String, language: String, version: Int, category: PurposeCategory, purpose: String,
        body: String, bodySha256: String, header: TemplateHeader?, buttons: [TemplateButton], status: TemplateStatus,
        statusReason: String?, quality: String?, findings: [TemplateLintFinding], createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.language = language
        self.version = version
        self.category = category
        self.purpose = purpose
        self.body = body
        self.bodySha256 = bodySha256
        self.header = header
        self.buttons = buttons
        self.status = status
        self.statusReason = statusReason
        self.quality = quality
        self.findings = findings
        self.createdAt = createdAt
    }

    /// The platform's naming rule: lower-case letters, digits and underscores, at most 512 characters.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...512).contains(bytes.count) else { return false }
        return bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }

    /// The platform's language codes: `it`, `en_US`, `pt_BR`, `zh_CN`.
    public static func isValidLanguage(_ code: String) -> Bool {
        let parts = code.split(separator: "_", omittingEmptySubsequences: false)
        guard let first = parts.first, (2...3).contains(first.count),
            first.allSatisfy({ $0.isASCII && $0.isLowercase && $0.isLetter }), parts.count <= 2
        else { return false }
        guard parts.count == 2 else { return true }
        return parts[1].count == 2 && parts[1].allSatisfy { $0.isASCII && $0.isUppercase && $0.isLetter }
    }

    public static let maxBodyLength = 1024

    /// Hex SHA-256 of the body's UTF-8, as stored.
    public static func sha256Hex(_ body: String) -> String { SHA256.hash(data: Array(body.utf8)).hexString }
}

public struct TemplateHeader: Sendable, Equatable, Codable {
    public let format: TemplateHeaderFormat
    public let text: String?

    public init(format: TemplateHeaderFormat, text: String?) {
        self.format = format
        self.text = text
    }
}

public struct TemplateButton: Sendable, Equatable, Codable {
    public let type: String
    public let text: String

    public init(type: String, text: String) {
        self.type = type
        self.text = text
    }
}

/// What a check needs of a template: which version decides, its category and purpose, and its state.
public struct ResolvedTemplate: Sendable, Equatable {
    public let id: UUID
    public let version: Int
    public let category: PurposeCategory
    public let purpose: String
    /// The category of the template's purpose, which differs from `category` once the platform re-categorised it.
    public let purposeCategory: PurposeCategory
    public let status: TemplateStatus

    public init(
        id: UUID, version: Int, category: PurposeCategory, purpose: String, purposeCategory: PurposeCategory,
        status: TemplateStatus
    ) {
        self.id = id
        self.version = version
        self.category = category
        self.purpose = purpose
        self.purposeCategory = purposeCategory
        self.status = status
    }

    /// The purpose whose consent decides a send. A template the platform re-filed under another category is sent
    /// as that category: a utility template found promotional needs marketing consent, which is consent to the
    /// built-in purpose of that category, not to the order updates it was written for.
    public var consentPurpose: String {
        guard category != purposeCategory else { return purpose }
        switch category {
        case .marketing: return "marketing"
        case .authentication: return "authentication"
        case .utility: return purpose
        }
    }
}
