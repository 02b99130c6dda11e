import ConsentCore
import ConsentStore
import Foundation
import Testing

@testable import ConsentServer

/// Every HTML template loads from the bundle and renders its view; a missing or broken one stops the start-up.
@Suite struct TemplateTests {
    static let evil = #"<b>"x" & 'y'</b>"#
    static let escaped = "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"

    /// Each page template with sample data, every text field holding markup that must come out escaped.
    static func samples(_ templates: PageTemplates) -> [PageTemplates.Name: String] {
        let evil = Self.evil
        func console<Body: ConsoleBody>(_ body: Body) -> String {
            templates.render(
                ConsolePage(
                    title: evil, signedIn: true, csrf: evil, nav: ConsoleNav(Body.section), flash: evil, problem: evil,
                    page: body))
        }
        let channels = ChannelOption.all(selected: .sms)
        let request = RequestSummary(
            id: "r1", type: evil, status: "pending", receivedAt: "t", dueAt: "t", overdue: true, subjectRef: "ref",
            closedAt: nil, pending: true, completeLabel: evil)
        let chart = WeeklyChart([
            WeeklyActivity(weekStart: Date(timeIntervalSince1970: 1_763_942_400), granted: 3, withdrawn: 1)
        ])
        return [
            .consoleSignIn: console(SignInView()),
            .consoleOverview: console(
                OverviewView(
                    anyActive: true, rows: [.init(purpose: evil, channel: "sms", active: 1, granted: 2, withdrawn: 3)],
                    chart: chart,
                    weeks: [.init(week: "2026-01-05", granted: 1, withdrawn: 0)], anyDue: true,
                    due: [.init(id: "r1", type: evil, dueAt: "2026-02-05 09:00 UTC", overdue: true)],
                    checkpoint: .init(size: 7, issuedAt: "2026-01-05 09:00 UTC"), verified: nil,
                    lastFailure: .init(verifiedAt: "2026-01-05 09:00 UTC", problem: evil))),
            .consoleLookup: console(LookupView(channels: channels, entered: evil)),
            .consoleSubject: console(
                SubjectView(
                    channels: channels, entered: evil,
                    subject: .init(
                        identifier: evil, channel: "sms", channelLabel: "SMS", ref: "ref", firstSeenAt: "t", window: "w"
                    ),
                    consents: [
                        .init(
                            purpose: "marketing", purposeName: evil, status: "granted", grantedAt: "t", revokedAt: nil,
                            revokeSource: "",
                            noticeText: evil, noticeLanguage: "en", noticeHash: "h", active: true,
                            evidence: [
                                .init(
                                    collectedAt: "t", method: "checkbox", pageUrl: evil, userAgent: evil,
                                    ipAddress: nil,
                                    boxes: evil)
                            ])
                    ],
                    timeline: [.init(at: "t", action: evil, seq: 0, actor: "a", detail: nil)],
                    erasure: ErasureConfirmation(code: evil, seal: evil))),
            .consoleErased: console(ErasedView(erasedAt: evil, suppressed: true)),
            .consoleRequests: console(RequestQueueView(requests: [request])),
            .consoleRequest: console(RequestPageView(request: request)),
            .consoleAudit: console(
                AuditView(
                    verification: .init(ok: false, verifiedAt: "t", treeSize: 3, failure: evil),
                    reportFrom: "2026-01-01",
                    reportTo: "2026-01-31", events: [.init(seq: 1, at: "t", action: evil, actor: "a", subjectRef: "")],
                    newer: "-1",
                    older: 1)),
            .consoleRefused: console(RefusedView(reason: evil)),
            .consoleImports: console(
                ImportsView(
                    imports: [
                        ImportsView.Row(
                            id: evil, createdAt: evil, status: evil, running: true, dryRun: true, format: evil, rows: 1,
                            recorded: evil, granted: 1, pending: 0, superseded: 0, suppressed: 0, duplicate: 0,
                            invalid: 0,
                            sameFileAs: evil)
                    ], notices: [ImportsView.NoticeChoice(id: evil, label: evil)])),
            .consoleWebhooks: console(
                WebhooksView(endpoints: [
                    WebhooksView.Endpoint(
                        id: evil, url: evil, description: evil, events: evil, disabled: true, disabledAt: evil,
                        disabledReason: evil, createdAt: evil,
                        deliveries: [
                            WebhooksView.Delivery(
                                id: evil, endpointId: evil, type: evil, state: evil, failed: true, createdAt: evil,
                                nextAttemptAt: evil, redeliveryOf: evil,
                                attempts: [WebhooksView.Attempt(attempt: 1, at: evil, outcome: evil, latency: evil)])
                        ])
                ])),
            .consoleOptOuts: console(
                OptOutReviewsView(
                    reviews: [
                        .init(
                            OptOutReview(
                                id: UUID(), subjectRef: UUID(), channel: .sms, receivedAt: Date(), openedAt: Date(),
                                text: evil, resolution: nil, resolvedAt: nil))
                    ])),
            .consoleTemplates: console(
                TemplatesView(
                    templates: [
                        TemplatesView.Version(
                            MessageTemplate(
                                id: UUID(), name: "n", language: "en", version: 1, category: .utility,
                                purpose: "shipping_update", body: evil + " 20% off " + evil, bodySha256: "h",
                                header: TemplateHeader(format: .text, text: evil),
                                buttons: [], status: .paused, statusReason: evil, quality: evil,
                                findings: [
                                    TemplateLintFinding(
                                        rule: .promotion, language: "en", excerpt: evil, start: 0,
                                        end: evil.unicodeScalars.count)
                                ], createdAt: Date()))
                    ],
                    changes: [
                        .init(at: "t", what: evil, name: evil, language: "en", version: 1, from: evil, to: evil)
                    ])),
            .selfService: templates.render(
                HTMLPage.Document(
                    language: "en", title: evil,
                    page: SelfServiceView(
                        heading: evil, withdrawn: evil, intro: evil, none: evil, anyConsents: true,
                        consents: [.init(purpose: "marketing", name: evil, detail: evil)],
                        action: "/self-service/t/withdraw",
                        withdrawLabel: evil, withdrawAllLabel: evil))),
            .selfServiceUnusable: templates.render(
                HTMLPage.Document(
                    language: "en", title: evil, page: SelfServiceUnusableView(heading: evil, message: evil))),
            .demoCheckout: templates.render(
                HTMLPage.Document(language: "en", title: evil, page: DemoCheckoutView(mistake: evil))),
            .demoPayment: templates.render(
                HTMLPage.Document(
                    language: "en", title: evil,
                    scripts: [.init(src: "/widget.js", data: [.init(name: "token", value: evil)])],
                    page: DemoPaymentView())),
            .reportHead: templates.render(
                HTMLReportHead(
                    tenantName: evil, period: evil, total: 2, writtenAt: "t", origin: evil, treeSize: 2, issuedAt: "t",
                    note: evil,
                    verifierKey: evil, byAction: [], byPurpose: [])),
            .reportRow: templates.render(
                HTMLReportRow(
                    seq: 1, at: "t", action: evil, actor: evil, subjectRef: "", data: evil, leafHash: "h")),
            .reportFoot: templates.render(HTMLReportFoot()),
        ]
    }

    @Test func everyTemplateLoadsAndRendersItsView() async throws {
        let templates = try await PageTemplates.load()
        let rendered = Self.samples(templates)
        let partials: Set<PageTemplates.Name> = [.consoleHead, .consoleFoot, .consoleLookupForm, .pageHead, .pageFoot]
        #expect(Set(rendered.keys) == Set(PageTemplates.Name.allCases).subtracting(partials), "a sample for every page")
        for (name, html) in rendered {
            #expect(!html.isEmpty, "\(name.rawValue)")
            #expect(!html.contains(Self.evil), "\(name.rawValue) escapes every value")
            #expect(!html.contains("Optional(") && !html.contains(">nil<"), "\(name.rawValue)")
            if name != .reportFoot { #expect(html.contains(Self.escaped), "\(name.rawValue) shows its data") }
        }
        // The partials are in: the console's head, the pages' foot with its script, the lookup form.
        #expect(rendered[.consoleOverview]?.contains(#"<a href="/console" aria-current="page">"#) == true)
        #expect(
            rendered[.demoPayment]?.contains(#"<script src="/widget.js" data-token="\#(Self.escaped)"></script>"#)
                == true)
        #expect(rendered[.consoleSubject]?.contains(#"id="lookup""#) == true)
    }

    @Test func aMissingOrBrokenTemplateStopsTheStartUp() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("templates-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("console"), withIntermediateDirectories: true)
        try "{{title}}".write(
            to: folder.appendingPathComponent("console/head.mustache"), atomically: true, encoding: .utf8)
        await #expect(throws: PageTemplates.LoadingError.self) { try await PageTemplates.load(from: folder.path) }
        try "{{#page}}unclosed".write(
            to: folder.appendingPathComponent("console/foot.mustache"), atomically: true, encoding: .utf8)
        let error = await #expect(throws: PageTemplates.LoadingError.self) {
            try await PageTemplates.load(from: folder.path)
        }
        #expect(error?.description.contains("console/foot.mustache") == true)
    }
}
