import Foundation

/// A consent as an ISO/IEC TS 27560:2023 consent record: the standard's sections (record header, PII processing,
/// party identification, events) with its element names in snake case. The TS fixes the information, not a
/// serialisation; docs/subject-export.md maps each element to where the service keeps it.
public enum ConsentRecord27560 {
    public static let schemaVersion = "ISO/IEC TS 27560:2023; consentledger mapping 1"

    public static func json(_ consent: SubjectExport.Consent, export: SubjectExport) -> JSONValue {
        let t = SubjectExportDocument.time
        var events: [JSONValue] = []
        if let first = consent.evidence.first {
            events.append(
                event(
                    first.collectedAt,
                    consent.status == "pending" && consent.grantedAt == nil ? "consent_requested" : "consent_given",
                    by: "pii_principal", state: "active"))
        }
        for later in consent.evidence.dropFirst() {
            events.append(event(later.collectedAt, "consent_reaffirmed", by: "pii_principal", state: "active"))
        }
        if let revokedAt = consent.revokedAt {
            let byController = consent.revokeSource == .dpo
            events.append(
                event(
                    revokedAt, "consent_withdrawn", by: byController ? "pii_controller" : "pii_principal",
                    state: "withdrawn"))
        }
        let state: String =
            switch consent.status {
            case "granted": "active"
            case "pending": "pending_confirmation"
            case "expired": "expired"
            // Kept as evidence, never in force: DPV's ConsentInvalidated.
            case "superseded": "invalidated"
            default: "withdrawn"
            }
        let method = consent.evidence.first?.method.rawValue ?? "unknown"
        return .object([
            "record_header": .object([
                "schema_version": .string(schemaVersion),
                "record_id": .string(consent.id.lowercased),
                "pii_principal_id": .string(export.subjectRef.lowercased),
                "record_created": t(consent.createdAt),
                "record_state": .string(state),
            ]),
            "pii_processing": .object([
                "language": .string(consent.notice.language),
                "presented_notice": .object([
                    "notice_id": .string(consent.notice.id.lowercased),
                    "notice_version": .number(Double(consent.notice.version)),
                    "notice_text_sha256": .string(consent.notice.textSha256),
                ]),
                "purposes": .array([
                    .object([
                        "purpose_id": .string(consent.purpose.key),
                        "purpose": .string(consent.purpose.name),
                        "purpose_category": .string(consent.purpose.category.rawValue),
                        "lawful_basis": .string("consent (GDPR Art. 6(1)(a); ePrivacy Directive Art. 13)"),
                        "pii_information": .array([.string("\(export.subject.channel.rawValue) identifier")]),
                        "processing": .array([.string("sending \(export.subject.channel.rawValue) messages")]),
                    ])
                ]),
                "collection_method": .string(method),
                "jurisdiction": .string("EU (GDPR)"),
                "withdrawal_method": .string(
                    "reply STOP on the channel, use the self-service link, or ask the controller (POST /v1/revocations)"
                ),
            ]),
            "party_identification": .object([
                "pii_controllers": .array([.object(["controller_id": .string(export.controller)])])
            ]),
            "events": .array(events),
        ])

        func event(_ at: Date, _ type: String, by: String, state: String) -> JSONValue {
            .object([
                "event_time": t(at), "event_type": .string(type), "event_by": .string(by),
                "event_state": .string(state),
            ])
        }
    }
}
