import Foundation
import HTTPTypes
import Hummingbird

/// The service's own HTML pages (self-service, demo checkout): server-rendered, styled by one stylesheet, with
/// headers that keep them from being framed, leaking their URL (it holds a token) or running injected script.
enum HTMLPage {
    /// A same-origin script and its `data-` attributes; the policy allows these and nothing inline.
    struct Script: Sendable {
        struct Attribute: Sendable {
            /// Written as `data-<name>`: always a constant of the code, never input.
            let name: String
            let value: String
        }

        let src: String
        var data: [Attribute] = []
    }

    /// A page of the self-service and demo kind: `pages/head` and `pages/foot` around its body's template.
    struct Document<Body: PageView>: PageView {
        static var template: PageTemplates.Name { Body.template }
        let language: String
        let title: String
        var scripts: [Script] = []
        let page: Body
    }

    static func response<Body>(
        _ document: Document<Body>, templates: PageTemplates, status: HTTPResponse.Status = .ok
    ) -> Response {
        response(templates.render(document), status: status, allowingScripts: !document.scripts.isEmpty)
    }

    /// Rendered HTML with the pages' headers.
    static func response(
        _ html: String, status: HTTPResponse.Status = .ok, allowingScripts: Bool = false,
        referrerPolicy: String = "no-referrer"
    ) -> Response {
        Response(
            status: status, headers: headers(allowingScripts: allowingScripts, referrerPolicy: referrerPolicy),
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// `no-referrer` where the URL holds a token (self-service links); the console uses `same-origin`, because
    /// with `no-referrer` browsers send `Origin: null` on the console's own forms and its origin check needs it.
    static func headers(allowingScripts: Bool, referrerPolicy: String = "no-referrer") -> HTTPFields {
        let script = allowingScripts ? "script-src 'self'; connect-src 'self'; " : ""
        return [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            .contentSecurityPolicy:
                "default-src 'none'; \(script)style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .referrerPolicy: referrerPolicy,
            .xContentTypeOptions: "nosniff",
            .xFrameOptions: "DENY",
        ]
    }

    /// A stylesheet: the pages' own, or the console's.
    static func stylesheet(_ css: String = css) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=300"],
            body: .init(byteBuffer: ByteBuffer(string: css)))
    }

    /// Mobile first: one column, large touch targets, system fonts.
    static let css = """
        :root { color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
        body { margin: 0; line-height: 1.5; }
        main { max-width: 36rem; margin: 0 auto; padding: 1.25rem; }
        h1 { font-size: 1.4rem; margin: 0 0 .75rem; }
        ul.consents { list-style: none; padding: 0; margin: 1rem 0; }
        ul.consents li { display: flex; gap: .75rem; align-items: center; justify-content: space-between;
          padding: .75rem 0; border-bottom: 1px solid #8884; }
        .muted { opacity: .75; font-size: .9rem; }
        button, input[type=submit] { font: inherit; padding: .6rem 1rem; min-height: 2.75rem; border-radius: .5rem;
          border: 1px solid #8888; cursor: pointer; }
        .danger { background: #b3261e; color: #fff; border-color: #b3261e; }
        .notice { padding: .75rem; border-radius: .5rem; background: #8882; }
        label { display: block; margin: .5rem 0 .25rem; }
        input[type=tel] { font: inherit; padding: .5rem; width: 100%; box-sizing: border-box; }
        .consentledger-row { display: flex; gap: .5rem; align-items: flex-start; margin: .75rem 0; }
        .consentledger-row input { margin-top: .35rem; width: 1.25rem; height: 1.25rem; }
        .consentledger-row label { margin: 0; }
        """
}

/// Fields HTTPTypes does not name.
extension HTTPField.Name {
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}
