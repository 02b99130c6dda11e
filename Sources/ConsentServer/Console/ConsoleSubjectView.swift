import ConsentCore
import ConsentStore
import Foundation

/// The subject page: who the person is on this channel, each consent with its notice and evidence, and the audit
/// events about them, from the same export the API serves.
struct SubjectView: ConsoleBody {
    static let template = PageTemplates.Name.consoleSubject
    static let section: ConsoleNav.Section? = .subject

    struct Facts: Sendable {
        let identifier: String
        let channel: String
        let channelLabel: String
        let ref: String
        let firstSeenAt: String
        let window: String
    }

    struct Evidence: Sendable {
        let collectedAt: String
        let method: String
        let pageUrl: String
        let userAgent: String?
        let ipAddress: String?
        /// "utility ticked, marketing not ticked": the widget's boxes, when the opt-in came from it.
        let boxes: String?
    }

    struct Consent: Sendable {
        let purpose: String
        let purposeName: String
        let status: String
        let grantedAt: String
        let revokedAt: String?
        let revokeSource: String
        let noticeText: String
        let noticeLanguage: String
        let noticeHash: String
        /// Offers the withdraw button.
        let active: Bool
        let evidence: [Evidence]
    }

    struct Event: Sendable {
        let at: String
        let action: String
        let seq: Int64
        let actor: String
        let detail: String?
    }

    /// The lookup form above the page (`console/lookup-form`).
    let channels: [ChannelOption]
    let entered: String
    let subject: Facts
    let consents: [Consent]
    let timeline: [Event]
    /// The code the erasure form asks for, fresh with each showing of the page.
    let erasure: ErasureConfirmation
}

extension SubjectView {
    init(_ export: SubjectExport, lookup: LookupView, now: Date, erasure: ErasureConfirmation) {
        self.erasure = erasure
        let time = ConsoleRoutes.time
        channels = lookup.channels
        entered = lookup.entered
        let window =
            export.window.isOpen(at: now)
            ? "open until \(export.window.closesAt.map(time) ?? "")"
            : export.window.closesAt.map { "closed since \(time($0))" } ?? "never opened"
        subject = Facts(
            identifier: export.subject.value, channel: export.subject.channel.rawValue,
            channelLabel: SelfServiceText.channelName(export.subject.channel), ref: export.subjectRef.lowercased,
            firstSeenAt: time(export.firstSeenAt), window: window)
        consents = export.consents.map { consent in
            Consent(
                purpose: consent.purpose.key, purposeName: consent.purpose.name, status: consent.status,
                grantedAt: consent.grantedAt.map(time) ?? "not yet", revokedAt: consent.revokedAt.map(time),
                revokeSource: consent.revokeSource?.rawValue ?? "", noticeText: consent.notice.text,
                noticeLanguage: consent.notice.language, noticeHash: consent.notice.textSha256,
                active: consent.status == "granted" || consent.status == "pending",
                evidence: consent.evidence.map { collection in
                    Evidence(
                        collectedAt: time(collection.collectedAt), method: collection.method.rawValue,
                        pageUrl: collection.provenance?.pageUrl ?? "(cleared by retention)",
                        userAgent: collection.provenance?.userAgent, ipAddress: collection.provenance?.ipAddress,
                        boxes: collection.provenance?.boxes.map { boxes in
                            boxes.sorted { $0.key < $1.key }
                                .map { "\($0.key) \($0.value ? "ticked" : "not ticked")" }.joined(separator: ", ")
                        })
                })
        }
        timeline = export.auditEvents.map { event in
            let record = event.record
            var detail: [String] = []
            if case .string(let purpose)? = record.data["purpose"] { detail.append(purpose) }
            if case .string(let source)? = record.data["source"] { detail.append("source \(source)") }
            return Event(
                at: record.at, action: record.action, seq: record.seq, actor: record.actor,
                detail: detail.isEmpty ? nil : detail.joined(separator: ", "))
        }
    }
}
