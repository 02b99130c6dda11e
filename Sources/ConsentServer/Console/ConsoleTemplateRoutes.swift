import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console/templates`: every template version with its status, category and quality, the lint findings marked in
/// its body, and what the platform changed (paused, re-categorised, re-rated), from the audit log.
extension ConsoleRoutes {
    func registerTemplates(on router: Router<ConsentRequestContext>) {
        router.get("/console/templates") { request, context in try await templatesPage(request, context: context) }
    }

    private func templatesPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            let tenantId = session.caller.tenantId
            let store = database.templates
            let all = try await store.list(tenantId: tenantId, logger: context.logger)
            let history = try await store.platformHistory(tenantId: tenantId, logger: context.logger)
            let view = TemplatesView(
                templates: all.sorted { ($0.name, $0.language, -$0.version) < ($1.name, $1.language, -$1.version) }
                    .map(TemplatesView.Version.init),
                changes: history.map {
                    TemplatesView.Change(
                        at: Self.time($0.at), what: TemplatesView.Change.describe($0.action), name: $0.name,
                        language: $0.language, version: $0.version, from: $0.from, to: $0.to)
                })
            return render(view, title: "Templates", session: session)
        }
    }
}

struct TemplatesView: ConsoleBody {
    static let template = PageTemplates.Name.consoleTemplates
    static let section: ConsoleNav.Section? = .templates

    /// A run of the body, marked when a finding covers it.
    struct Piece: Sendable {
        let text: String
        let rule: String?
    }

    struct Version: Sendable {
        let name: String
        let language: String
        let version: Int
        let status: String
        let attention: Bool
        let statusReason: String?
        let category: String
        let purpose: String
        let quality: String?
        let createdAt: String
        let header: String?
        let pieces: [Piece]
        let findings: [String]
        let anyFindings: Bool

        init(_ template: MessageTemplate) {
            name = template.name
            language = template.language
            version = template.version
            status = template.status.rawValue
            attention = template.status == .paused || template.status == .disabled || template.status == .rejected
            statusReason = template.statusReason
            category = template.category.rawValue
            purpose = template.purpose
            quality = template.quality
            createdAt = ConsoleRoutes.time(template.createdAt)
            header = template.header.map { $0.format.rawValue + ($0.text.map { ": " + $0 } ?? "") }
            pieces = Self.pieces(template.body, findings: template.findings)
            findings = template.findings.map {
                $0.rule == .mediaHeader ? "media header (\($0.excerpt))" : "\($0.rule.rawValue): “\($0.excerpt)”"
            }
            anyFindings = !template.findings.isEmpty
        }

        /// The body cut at the findings' offsets (Unicode code points); overlapping findings mark their union.
        static func pieces(_ body: String, findings: [TemplateLintFinding]) -> [Piece] {
            let scalars = Array(body.unicodeScalars)
            var rules = [String?](repeating: nil, count: scalars.count)
            for finding in findings where finding.rule != .mediaHeader {
                let start = max(0, min(finding.start, scalars.count))
                let end = max(start, min(finding.end, scalars.count))
                for index in start..<end { rules[index] = rules[index] ?? finding.rule.rawValue }
            }
            var pieces: [Piece] = []
            var start = 0
            while start < scalars.count {
                var end = start + 1
                while end < scalars.count, rules[end] == rules[start] { end += 1 }
                var text = String.UnicodeScalarView()
                text.append(contentsOf: scalars[start..<end])
                pieces.append(Piece(text: String(text), rule: rules[start]))
                start = end
            }
            return pieces
        }
    }

    struct Change: Sendable {
        let at: String
        let what: String
        let name: String
        let language: String
        let version: Int
        let from: String
        let to: String

        static func describe(_ action: AuditAction) -> String {
            switch action {
            case .templateCategoryChanged: "re-categorised"
            case .templateQualityChanged: "quality rated"
            default: "status changed"
            }
        }
    }

    let templates: [Version]
    let changes: [Change]
}
