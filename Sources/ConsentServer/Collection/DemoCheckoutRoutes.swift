import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The demo shop that `consentd dev` runs: which tenant, which of its `consent:write` keys the "shop backend"
/// opens sessions with, and which notice its checkout shows.
public struct DemoShop: Sendable {
    public let tenantId: UUID
    public let writeKeyId: UUID
    /// The notice `consentd dev` made for the checkout; shown when it covers `noticePurposes` (see
    /// `DemoCheckoutRoutes.notice`).
    public let noticeId: UUID

    public init(tenantId: UUID, writeKeyId: UUID, noticeId: UUID) {
        self.tenantId = tenantId
        self.writeKeyId = writeKeyId
        self.noticeId = noticeId
    }

    /// Two categories, so the checkout shows two boxes: order updates (utility) and offers (marketing).
    public static let noticeText =
        "We can message you on WhatsApp about this order (shipping and delivery) and, if you wish, with our offers. "
        + "Tick what you agree to. You can withdraw at any time by replying STOP."
    public static let noticePurposes = ["shipping_update", "marketing"]
}

/// `/demo/checkout`: a checkout page that uses the widget for real. Its server side plays the shop's backend: it
/// takes the phone number from the order form and opens a consent session for it, as a shop would with its key.
struct DemoCheckoutRoutes {
    let shop: DemoShop
    let database: ConsentDatabase
    let collection: CollectionPolicy
    let templates: PageTemplates

    func register(on router: Router<ConsentRequestContext>) {
        router.get("/demo/checkout") { _, _ in orderForm(mistake: nil) }
        router.post("/demo/checkout") { request, context in try await checkout(request, context: context) }
        router.get("/demo/checkout.js") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: Self.pageScript)))
        }
    }

    private func orderForm(mistake: String?) -> Response {
        HTMLPage.response(
            HTMLPage.Document(language: "en", title: "Demo shop: checkout", page: DemoCheckoutView(mistake: mistake)),
            templates: templates, status: mistake == nil ? .ok : .unprocessableContent)
    }

    private struct CheckoutForm: Decodable {
        let phone: String?
    }

    private func checkout(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let form = try await request.decodeForm(CheckoutForm.self)
        guard let subject = try? SubjectIdentifier(form.phone ?? "", channel: .whatsapp) else {
            return orderForm(mistake: "That is not a mobile number in international form, such as +39 333 123 4567.")
        }
        let caller = CallerIdentity(keyId: shop.writeKeyId, tenantId: shop.tenantId, scopes: [.consentWrite])
        let noticeId = try await notice(caller: caller, logger: context.logger)
        let pageUrl =
            collection.publicBaseURL.map { "\($0)/demo/checkout" }
            ?? "http://\(request.head.authority ?? "127.0.0.1")/demo/checkout"
        let opened = try await database.commit(
            database.consentSessions.open(
                subject: subject, noticeId: noticeId, pageUrl: pageUrl,
                lifetime: collection.consentSessionLifetime,
                caller: caller),
            logger: context.logger)
        return HTMLPage.response(
            HTMLPage.Document(
                language: "en", title: "Demo shop: payment",
                scripts: [
                    .init(
                        src: "/widget.js",
                        data: [.init(name: "token", value: opened.token.text), .init(name: "target", value: "consent")]),
                    .init(src: "/demo/checkout.js"),
                ],
                page: DemoPaymentView()),
            templates: templates)
    }

    /// The notice the checkout shows: `DemoShop.noticeText` over `DemoShop.noticePurposes`, so that it asks for
    /// order updates and offers apart. That is `shop.noticeId` when `consentd dev` made it over those purposes;
    /// otherwise (a notice made over other purposes, or a dev database from before) it is found by its wording and
    /// purposes, or made once with the shop's key: notices are immutable, so other purposes need another notice.
    private func notice(caller: CallerIdentity, logger: Logger) async throws -> UUID {
        let matching = try await database.notices.list(tenantId: shop.tenantId, logger: logger).filter {
            $0.channel == .whatsapp && $0.language == "en" && $0.text == DemoShop.noticeText
                && $0.purposes == DemoShop.noticePurposes
        }
        if let notice = matching.first(where: { $0.id == shop.noticeId }) ?? matching.last { return notice.id }
        return try await database.commit(
            database.notices.create(
                channel: .whatsapp, language: "en", text: DemoShop.noticeText, purposes: DemoShop.noticePurposes,
                caller: caller),
            logger: logger
        ).id
    }

    /// Reports the widget's events on the page: what a shop's own script would do with them.
    static let pageScript = """
        (function () {
          var outcome = document.getElementById("outcome");
          function show(state, text) { outcome.setAttribute("data-outcome", state); outcome.textContent = text; }
          document.addEventListener("consentledger:accepted", function (e) {
            show("accepted", "Consent recorded for: " + e.detail.consents.map(function (c) { return c.purpose; }).join(", "));
          });
          document.addEventListener("consentledger:declined", function () { show("declined", "No consent recorded."); });
          document.addEventListener("consentledger:error", function (e) { show("error", "Error: " + e.detail.code); });
          document.addEventListener("consentledger:ready", function () { outcome.setAttribute("data-outcome", "ready"); });
        })();
        """
}

/// The order form; `mistake` says what was wrong with the number last posted.
struct DemoCheckoutView: PageView {
    static let template = PageTemplates.Name.demoCheckout
    let mistake: String?
}

/// The payment step, where the widget shows the notice.
struct DemoPaymentView: PageView {
    static let template = PageTemplates.Name.demoPayment
}
