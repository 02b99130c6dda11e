import ArgumentParser
import Foundation
import Logging

@main
struct Consentd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consentd",
        abstract: "ConsentLedger: proof and state of people's consent to be messaged.",
        subcommands: [Dev.self, Serve.self, Migrate.self, Tenants.self, Keys.self, Audit.self, Import.self])

    static func main() async {
        // Logs go to standard error so that commands which print a secret (keys create) print only that.
        let level =
            ProcessInfo.processInfo.environment["CONSENTD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// A failure the operator can act on: printed as `Error: <message>`, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

var environment: [String: String] { ProcessInfo.processInfo.environment }
