import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The built `consentd` binary, run as an operator would run it.
struct ConsentdProcess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    struct Outcome {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// `swift test` builds the package's executables beside the test bundle.
    static var binary: String {
        let testBinary =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: testBinary).deletingLastPathComponent()
        // On Linux the test binary is `<build>/consentledgerPackageTests.xctest`; elsewhere it may be inside a bundle.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("consentd").path),
            directory.pathComponents.count > 1
        {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("consentd").path
    }

    static func launch(_ arguments: [String], environment: [String: String]) throws -> (Process, URL, URL) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "CONSENTD_LOG_LEVEL": "info",
            // Instances run side by side here: each takes any free port for its metrics listener.
            "CONSENTD_METRICS_PORT": "0",
        ]
        env.merge(environment) { _, new in new }
        process.environment = env
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "consentd-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let out = directory.appendingPathComponent("stdout")
        let err = directory.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, out, err)
    }

    static func run(_ arguments: [String], environment: [String: String]) async throws -> Outcome {
        let (process, out, err) = try launch(arguments, environment: environment)
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return Outcome(
            status: process.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
            stderr: try String(contentsOf: err, encoding: .utf8))
    }
}
