import Foundation
import Mustache

/// Every HTML page the service writes is a Mustache template in `Templates/`, shipped in the module's resource
/// bundle. They are loaded once, into one library, when the router is built, and checked then: a template that is
/// missing or does not parse stops the start-up with an error instead of failing a request later. `{{…}}` escapes
/// `& < > " '`, so values are safe as text and inside quoted attributes; no template uses `{{{…}}}`.
struct PageTemplates: Sendable {
    /// Each template by its path under `Templates/`, without `.mustache`. Partials are listed too: an unknown
    /// partial would otherwise render as nothing.
    enum Name: String, CaseIterable, Sendable {
        case consoleHead = "console/head"
        case consoleFoot = "console/foot"
        case consoleLookupForm = "console/lookup-form"
        case consoleSignIn = "console/sign-in"
        case consoleOverview = "console/overview"
        case consoleLookup = "console/lookup"
        case consoleSubject = "console/subject"
        case consoleErased = "console/erased"
        case consoleRequests = "console/requests"
        case consoleRequest = "console/request"
        case consoleAudit = "console/audit"
        case consoleTemplates = "console/templates"
        case consoleRefused = "console/refused"
        case consoleOptOuts = "console/opt-outs"
        case consoleImports = "console/imports"
        case consoleWebhooks = "console/webhooks"
        case pageHead = "pages/head"
        case pageFoot = "pages/foot"
        case selfService = "pages/self-service"
        case selfServiceUnusable = "pages/self-service-unusable"
        case demoCheckout = "pages/demo-checkout"
        case demoPayment = "pages/demo-payment"
        case reportHead = "report/head"
        case reportRow = "report/row"
        case reportFoot = "report/foot"
    }

    struct LoadingError: Error, CustomStringConvertible {
        let description: String
    }

    private let library: MustacheLibrary

    /// The templates in this module's bundle, every `Name` present and parsed.
    static func load() async throws -> PageTemplates {
        guard let directory = Bundle.module.url(forResource: "Templates", withExtension: nil) else {
            throw LoadingError(
                description:
                    "the HTML templates are missing next to the binary; deploy the consentledger_ConsentServer.resources folder with it"
            )
        }
        return try await load(from: directory.path)
    }

    static func load(from directory: String) async throws -> PageTemplates {
        let library: MustacheLibrary
        do {
            library = try await MustacheLibrary(directory: directory)
        } catch let error as MustacheLibrary.ParserError {
            throw LoadingError(
                description:
                    "the template \(error.filename) does not parse at line \(error.context.lineNumber), column \(error.context.columnNumber): \(error.error)"
            )
        }
        // The library skips what it cannot read and an absent folder alike, so each name is checked here.
        let missing = Name.allCases.filter { library.getTemplate(named: $0.rawValue) == nil }
        guard missing.isEmpty else {
            throw LoadingError(
                description:
                    "HTML templates missing from \(directory): \(missing.map(\.rawValue).joined(separator: ", "))")
        }
        return PageTemplates(library: library)
    }

    /// Every name is present (`load` checked), so the library's nil never happens; an empty page would show it.
    func render<View: PageView>(_ view: View) -> String {
        library.render(view, withTemplate: View.template.rawValue) ?? ""
    }
}

/// The data one template renders: a struct whose stored properties the template names (swift-mustache reads them
/// by reflection). A `Bool` or an optional opens a section, an array repeats it.
protocol PageView: Sendable {
    static var template: PageTemplates.Name { get }
}
