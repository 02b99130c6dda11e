import ConsentCore
import ConsentTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct ServeCommandTests {
    static let key = Data(repeating: 9, count: 32).base64EncodedString()

    func environment(_ url: DatabaseURL) -> [String: String] {
        [
            "DATABASE_URL": url.urlString, "CONSENTD_MASTER_KEY": Self.key, "CONSENTD_SIGNING_KEY": Self.key,
            "CONSENTD_PORT": "0",
        ]
    }

    @Test func theBinaryIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: ConsentdProcess.binary), "\(ConsentdProcess.binary)")
    }

    @Test(
        arguments: [
            ("DATABASE_URL", nil), ("DATABASE_URL", "mysql://x@y/z"), ("CONSENTD_MASTER_KEY", nil),
            ("CONSENTD_MASTER_KEY", "c2hvcnQ="), ("CONSENTD_SIGNING_KEY", nil), ("CONSENTD_SIGNING_KEY", "%%%"),
            ("CONSENTD_PORT", "99999"), ("CONSENTD_ALLOW_PRIVILEGED_ROLE", "perhaps"),
        ] as [(String, String?)])
    func refusesBadConfigurationNamingTheVariable(variable: String, value: String?) async throws {
        var env = environment(try DatabaseURL(parsing: "postgres://consentd_app@localhost/consentd"))
        env[variable] = value
        let outcome = try await ConsentdProcess.run(["serve"], environment: env)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains(variable), "\(outcome.stderr)")
    }

    @Test func refusesPrivilegedRolesAndPendingMigrations() async throws {
        let database = try await TestDatabase.fresh()
        let superuser = try await ConsentdProcess.run(["serve"], environment: environment(database.superuser))
        #expect(superuser.status != 0 && superuser.stderr.contains("superuser"), "\(superuser.stderr)")
        let owner = try await ConsentdProcess.run(["serve"], environment: environment(database.owner))
        #expect(owner.status != 0 && owner.stderr.contains("owns"), "\(owner.stderr)")

        let empty = try await TestDatabase.fresh(migrated: false)
        var allowed = environment(empty.superuser)
        allowed["CONSENTD_ALLOW_PRIVILEGED_ROLE"] = "true"
        let pending = try await ConsentdProcess.run(["serve"], environment: allowed)
        #expect(pending.status != 0 && pending.stderr.contains("pending"), "\(pending.stderr)")
    }

    @Test func refusesAnUnreachableDatabaseWithAMessage() async throws {
        let env = environment(
            try DatabaseURL(parsing: "postgres://consentd_app@localhost:1/consentd?host=/nonexistent"))
        let outcome = try await ConsentdProcess.run(["serve"], environment: env)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("cannot reach the database"), "\(outcome.stderr)")
    }

    @Test func servesAsTheRuntimeRoleAndStopsGracefullyOnSIGTERM() async throws {
        let database = try await TestDatabase.fresh()
        let (process, _, err) = try ConsentdProcess.launch(["serve"], environment: environment(database.app))
        defer { if process.isRunning { process.terminate() } }
        var port: Int?
        for _ in 0..<300 where port == nil {
            try await Task.sleep(for: .milliseconds(50))
            let log = try String(contentsOf: err, encoding: .utf8)
            if let range = log.range(of: #"address=127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(log[range].split(separator: ":").last!)
            }
            guard process.isRunning else {
                Issue.record("consentd serve exited: \(log)")
                return
            }
        }
        let listening = try #require(port)
        // The probe gives the database 2 s; under the whole suite's load one probe may miss that, as a load
        // balancer's would. Ready means ready within a few probes.
        var (body, status) = (Data(), 0)
        for attempt in 0..<5 {
            let (data, response) = try await URLSession.shared.data(
                from: URL(string: "http://127.0.0.1:\(listening)/readyz")!)
            (body, status) = (data, (response as? HTTPURLResponse)?.statusCode ?? 0)
            guard status != 200, attempt < 4 else { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(status == 200)
        #expect(String(decoding: body, as: UTF8.self) == #"{"status":"ready"}"#)

        process.terminate()  // SIGTERM
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
    }
}
