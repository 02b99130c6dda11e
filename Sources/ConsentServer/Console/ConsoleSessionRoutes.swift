import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

/// Signing in and out, and what every form needs. Sign-in exchanges a `dpo` key for a session cookie (HttpOnly,
/// SameSite=Strict; over TLS `__Host-` prefixed, Secure, path /; over plain HTTP path /console). Every form carries
/// the session's CSRF token, and a POST whose `Origin` is not this service's is refused: a cross-site page can
/// neither send the cookie (SameSite) nor know the token.
extension ConsoleRoutes {
    static let cookieName = "consentd_console"
    /// Over TLS the cookie carries the `__Host-` prefix: a browser accepts it only Secure, for path / and without a
    /// Domain, so neither a sibling subdomain nor a plain-HTTP response can plant or overwrite it (issue 21,
    /// finding 8). Plain HTTP (`consentd dev` on localhost) cannot set a Secure cookie and keeps the bare name.
    static let secureCookieName = "__Host-consentd_console"

    /// The one name this request's cookie may have: a bare-named cookie is not read over TLS.
    private func cookieName(_ request: Request) -> String {
        secure(request) ? Self.secureCookieName : Self.cookieName
    }
    /// Console forms are small; sign-in's single field smaller still.
    private static let formLimit = 64 * 1024
    private static let signInLimit = 16 * 1024

    func registerSession(on router: Router<ConsentRequestContext>) {
        router.get("/console/sign-in") { request, context in try await signInPage(request, context: context) }
        router.post("/console/sign-in") { request, context in try await signIn(request, context: context) }
        router.post("/console/sign-out") { request, context in try await signOut(request, context: context) }
    }

    func session(_ request: Request, context: ConsentRequestContext) async throws -> ConsoleSession? {
        guard let token = request.cookies[cookieName(request)].flatMap({ TenantToken($0.value) }) else { return nil }
        return try await sessions.resume(token, logger: context.logger)
    }

    /// Runs a form handler for a signed-in DPO posting from this service's own pages, with the form's fields;
    /// anything else is the refused page and changes nothing.
    func posting<Form: ConsoleForm>(
        _ form: Form.Type, _ request: Request, context: ConsentRequestContext,
        _ body: (ConsoleSession, Form) async throws -> Response
    ) async throws -> Response {
        do {
            try sameOrigin(request)
            guard let session = try await session(request, context: context) else {
                throw Refusal(
                    status: .forbidden,
                    reason:
                        "Your session has ended or this form did not come from the console; nothing was changed. Sign in again."
                )
            }
            let fields = try await decode(Form.self, request, limit: Self.formLimit)
            guard ConstantTime.equal(Array((fields.csrf ?? "").utf8), Array(session.csrfToken.utf8)) else {
                throw Refusal(
                    status: .forbidden,
                    reason: "This form is out of date or did not come from the console; nothing was changed.")
            }
            return try await body(session, fields)
        } catch let refusal as Refusal {
            return render(refusal, session: nil)
        }
    }

    // MARK: sign-in and sign-out

    private struct SignInForm: Decodable {
        let key: String?
    }

    private func signInPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        if try await session(request, context: context) != nil { return Self.redirect("/console") }
        return render(SignInView(), title: "Sign in", session: nil)
    }

    /// A sign-in posted from another site is refused too: it would sign the DPO's browser into someone else's
    /// session (login CSRF).
    private func signIn(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let form: SignInForm
        do {
            try sameOrigin(request)
            form = try await decode(SignInForm.self, request, limit: Self.signInLimit)
        } catch let refusal as Refusal {
            return render(refusal, session: nil)
        }
        guard let token = APIKeyToken(parsing: Substring((form.key ?? "").trimmingCharacters(in: .whitespaces))),
            let identity = try await keys.authenticate(token, logger: context.logger), identity.has(.dpo)
        else {
            return render(
                SignInView(), title: "Sign in", session: nil, status: .unauthorized,
                problem: "That key is unknown, revoked, or lacks the dpo scope.")
        }
        let (session, _) = try await sessions.start(for: identity, logger: context.logger)
        return Self.redirect("/console", setting: cookie(session.text, request: request))
    }

    private func signOut(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(CSRFOnlyForm.self, request, context: context) { session, _ in
            try await sessions.end(session, logger: context.logger)
            return Self.redirect("/console/sign-in", setting: cookie("", request: request, maxAge: 0))
        }
    }

    // MARK: what every form needs

    /// The session cookie: no `Max-Age` while signed in (it ends with the browser or the session, whichever is
    /// first), `Max-Age=0` to clear it.
    private func cookie(_ value: String, request: Request, maxAge: Int? = nil) -> Cookie {
        let secure = secure(request)
        return Cookie(
            name: cookieName(request), value: value, maxAge: maxAge, path: secure ? "/" : "/console", secure: secure,
            httpOnly: true, sameSite: .strict)
    }

    /// Served over TLS (a public https URL, or a trusted proxy that says so): the cookie is then Secure.
    private func secure(_ request: Request) -> Bool {
        if collection.publicBaseURL?.hasPrefix("https://") == true { return true }
        return collection.trustForwardedFor && request.headers[.xForwardedProto] == "https"
    }

    /// A browser's `Origin`, when it sends one, must be this service's own.
    func sameOrigin(_ request: Request) throws(Refusal) {
        guard let origin = request.headers[.origin] else { return }
        let own = CrossOrigin.ownOrigins(request, publicBaseURL: collection.publicBaseURL)
        guard let parsed = AllowedOrigin(origin), own.contains(parsed) else {
            throw Refusal(status: .forbidden, reason: "This form was sent from another site; nothing was changed.")
        }
    }

    /// A form that does not decode is refused like a malformed field elsewhere: 400, nothing changed.
    private func decode<Form: Decodable>(_ type: Form.Type, _ request: Request, limit: Int) async throws -> Form {
        do {
            return try await request.decodeForm(Form.self, limit: limit)
        } catch let error as APIError where error == .malformedForm {
            throw Refusal(status: .badRequest, reason: "The form could not be read; nothing was changed.")
        }
    }
}

/// A console form's fields: each carries the session's CSRF token.
protocol ConsoleForm: Decodable {
    var csrf: String? { get }
}

/// A form with nothing but its token (sign-out, verify, complete, cancel).
struct CSRFOnlyForm: ConsoleForm {
    let csrf: String?
}

struct SignInView: ConsoleBody {
    static let template = PageTemplates.Name.consoleSignIn
    static let section: ConsoleNav.Section? = nil
}
