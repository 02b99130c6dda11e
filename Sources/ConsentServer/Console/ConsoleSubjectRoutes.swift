import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console/subject`: look a person up (a POST: identifiers never reach a URL or a log line), download their
/// export, withdraw a consent, erase them. Export and erasure are the API's own code.
extension ConsoleRoutes {
    func registerSubjects(on router: Router<ConsentRequestContext>) {
        router.get("/console/subject") { request, context in try await lookupPage(request, context: context) }
        router.post("/console/subject") { request, context in try await lookup(request, context: context) }
        router.post("/console/subject/export") { request, context in try await export(request, context: context) }
        router.post("/console/subject/withdraw") { request, context in try await withdraw(request, context: context) }
        router.post("/console/subject/erase") { request, context in try await erase(request, context: context) }
        router.post("/console/subject/object") { request, context in try await object(request, context: context) }
    }

    /// The subject forms' fields; `purpose` only in a withdrawal, `confirm` and `seal` only in an erasure.
    private struct SubjectForm: ConsoleForm {
        let csrf: String?
        let subject: String?
        let channel: String?
        let purpose: String?
        let confirm: String?
        let seal: String?
    }

    private static let incomplete = Refusal(
        status: .badRequest, reason: "The form was incomplete; nothing was changed.")

    private func lookupPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            render(
                LookupView(channels: ChannelOption.all(selected: .whatsapp), entered: ""), title: "Subjects",
                session: session)
        }
    }

    private enum SubjectInput {
        case valid(SubjectIdentifier)
        /// The lookup page again, saying what is wrong.
        case invalid(Response)
    }

    /// The identifier from a form, or the lookup page again with the problem.
    private func identifier(_ form: SubjectForm, session: ConsoleSession) -> SubjectInput {
        let entered = form.subject ?? ""
        let channel = MessageChannel(rawValue: form.channel ?? "") ?? .whatsapp
        guard let subject = try? SubjectIdentifier(entered, channel: channel) else {
            return .invalid(
                render(
                    LookupView(channels: ChannelOption.all(selected: channel), entered: entered), title: "Subjects",
                    session: session, status: .unprocessableContent,
                    problem: channel.usesPhoneNumbers
                        ? "That is not a phone number in international form, such as +39 333 123 4567."
                        : "That is not an e-mail address."))
        }
        return .valid(subject)
    }

    private func lookup(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(SubjectForm.self, request, context: context) { session, form in
            switch identifier(form, session: session) {
            case .invalid(let page): return page
            case .valid(let subject): return try await subjectPage(subject, session: session, context: context)
            }
        }
    }

    private func subjectPage(
        _ subject: SubjectIdentifier, session: ConsoleSession, context: ConsentRequestContext, flash: String? = nil,
        problem: String? = nil, status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let lookupAgain = LookupView(channels: ChannelOption.all(selected: subject.channel), entered: subject.value)
        guard let export = try await exporter.export(subject, tenantId: session.caller.tenantId, logger: context.logger)
        else {
            return render(
                lookupAgain, title: "Subjects", session: session, status: .notFound,
                problem: "No data is held about this person on this channel.")
        }
        return render(
            SubjectView(
                export, lookup: lookupAgain, now: Date(),
                erasure: .issue(for: subject, sessionSecret: session.csrfToken)),
            title: "Subject", session: session, status: status, flash: flash, problem: problem)
    }

    private func export(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(SubjectForm.self, request, context: context) { session, form in
            guard case .valid(let subject) = identifier(form, session: session),
                let export = try await exporter.export(
                    subject, tenantId: session.caller.tenantId, logger: context.logger)
            else {
                return render(
                    Refusal(status: .notFound, reason: "No data is held about this person.", title: "Not found"),
                    session: session)
            }
            return try ExportBundle(export).download(filename: "subject-\(export.subjectRef.lowercased).json")
        }
    }

    private func withdraw(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(SubjectForm.self, request, context: context) { session, form in
            guard case .valid(let subject) = identifier(form, session: session),
                let purpose = try? Input.purpose(form.purpose ?? "")
            else { return render(Self.incomplete, session: session) }
            let result = try await database.commit(
                ledger.revoke(subject, purposes: [purpose], source: .dpo, caller: session.caller),
                logger: context.logger)
            return try await subjectPage(
                subject, session: session, context: context,
                flash: result.revoked.isEmpty ? "Nothing to withdraw." : "Withdrawn: \(purpose).")
        }
    }

    /// Art. 21 from the console: the same unit of work as `POST /v1/objections`, scope marketing, now.
    private func object(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(SubjectForm.self, request, context: context) { session, form in
            guard case .valid(let subject) = identifier(form, session: session) else {
                return render(Self.incomplete, session: session)
            }
            let result = try await database.commit(
                ledger.object(
                    Objection(subjects: [subject], scope: .marketing, source: .dpo, occurredAt: Date()),
                    caller: session.caller),
                logger: context.logger)
            let withdrawn = result.revoked.map(\.consent.purpose).sorted()
            return try await subjectPage(
                subject, session: session, context: context,
                flash: "Objection to marketing recorded"
                    + (withdrawn.isEmpty
                        ? "; no marketing consent was in force."
                        : ". Withdrawn: "
                            + withdrawn.joined(separator: ", ") + "."))
        }
    }

    private func erase(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(SubjectForm.self, request, context: context) { session, form in
            guard case .valid(let subject) = identifier(form, session: session) else {
                return render(Self.incomplete, session: session)
            }
            guard
                ErasureConfirmation.accepts(
                    typed: form.confirm ?? "", seal: form.seal ?? "", subject: subject,
                    sessionSecret: session.csrfToken)
            else {
                return try await subjectPage(
                    subject, session: session, context: context,
                    problem: "Type the confirmation code shown above the button to confirm the erasure (a new one is "
                        + "shown now). Nothing was erased.",
                    status: .unprocessableContent)
            }
            let erased = try await database.commit(
                subjectRights.desk.erase(subject, objection: false, caller: session.caller), logger: context.logger)
            return render(
                ErasedView(erasedAt: Self.time(erased.erasedAt), suppressed: erased.suppressed), title: "Erased",
                session: session)
        }
    }

    private var exporter: SubjectExporter { subjectRights.exporter }
}

struct ChannelOption: Sendable {
    let value: String
    let label: String
    let selected: Bool

    static func all(selected: MessageChannel) -> [ChannelOption] {
        MessageChannel.allCases.map {
            ChannelOption(value: $0.rawValue, label: SelfServiceText.channelName($0), selected: $0 == selected)
        }
    }
}

/// The lookup form alone (`console/lookup-form` reads `channels` and `entered`).
struct LookupView: ConsoleBody {
    static let template = PageTemplates.Name.consoleLookup
    static let section: ConsoleNav.Section? = .subject
    let channels: [ChannelOption]
    /// What the DPO typed, shown again in the form.
    let entered: String
}

struct ErasedView: ConsoleBody {
    static let template = PageTemplates.Name.consoleErased
    static let section: ConsoleNav.Section? = .subject
    let erasedAt: String
    let suppressed: Bool
}
