import Foundation
import HTTPTypes
import Hummingbird

/// The service's own HTML pages (self-service, demo checkout): server-rendered, styled by one stylesheet, with
/// headers that keep them from being framed, leaking their URL (it holds a token) or running injected script.
enum HTMLPage {
    /// A same-origin script and its `data-` attributes; the policy allows these and nothing inline.
    struct Script {
        let src: String
        var data: KeyValuePairs<String, String> = [:]
    }

    static func response(
        status: HTTPResponse.Status = .ok, title: String, language: String, body: String, scripts: [Script] = []
    ) -> Response {
        let scriptTags = scripts.map { script in
            let data = script.data.map { " data-\($0.key)=\"\(escape($0.value))\"" }.joined()
            return "<script src=\"\(escape(script.src))\"\(data)></script>"
        }.joined(separator: "\n")
        let html = """
            <!doctype html>
            <html lang="\(escape(language))">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <link rel="stylesheet" href="/assets/pages.css">
            </head>
            <body>
            <main>
            \(body)
            </main>
            \(scriptTags)
            </body>
            </html>
            """
        return Response(status: status, headers: headers(allowingScripts: !scripts.isEmpty), body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// `no-referrer` where the URL holds a token (self-service links); the console uses `same-origin`, because
    /// with `no-referrer` browsers send `Origin: null` on the console's own forms and its origin check needs it.
    static func headers(allowingScripts: Bool, referrerPolicy: String = "no-referrer") -> HTTPFields {
        let script = allowingScripts ? "script-src 'self'; connect-src 'self'; " : ""
        return [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            HTTPField.Name("Content-Security-Policy")!:
                "default-src 'none'; \(script)style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            HTTPField.Name("Referrer-Policy")!: referrerPolicy,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("X-Frame-Options")!: "DENY",
        ]
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func stylesheet() -> Response {
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

/// `application/x-www-form-urlencoded`, as HTML forms post it.
enum FormBody {
    static func decode(_ bytes: some Sequence<UInt8>) -> [String: String] {
        var fields: [String: String] = [:]
        let text = String(decoding: Array(bytes), as: UTF8.self)
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decodeComponent(parts[0])
            let value = parts.count > 1 ? decodeComponent(parts[1]) : ""
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    static func decodeComponent(_ text: Substring) -> String {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
    }
}
