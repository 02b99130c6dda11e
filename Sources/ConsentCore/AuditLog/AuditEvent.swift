import Foundation

/// One state change as the audit log records it: what happened, which key did it, an opaque reference to the
/// person (never the identifier), and non-personal details. Sequence numbers and hashes are added when the event
/// is sequenced into the tenant's log.
public struct AuditEvent: Sendable, Equatable {
    public let action: AuditAction
    public let actor: String
    public let subjectRef: UUID?
    public let data: [String: AuditValue]

    public init(action: AuditAction, actor: String, subjectRef: UUID? = nil, data: [String: AuditValue] = [:]) {
        self.action = action
        self.actor = actor
        self.subjectRef = subjectRef
        self.data = data
    }

    /// The actor of changes made by `consentd` commands on an operator's behalf.
    public static let operatorActor = "operator"
}

/// The values an event's `data` may hold: enough for ids, keys, counts and flags, and nothing free-form.
public enum AuditValue: Sendable, Equatable, Encodable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case strings([String])

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        }
    }
}

extension AuditValue {
    public static func id(_ id: UUID) -> AuditValue { .string(id.lowercased) }
}
