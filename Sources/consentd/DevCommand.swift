import ArgumentParser
import ConsentCore
import ConsentServer
import ConsentStore
import Foundation
import LocalPostgres
import Logging
import PostgresNIO

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole service locally with no set-up.",
        discussion: """
            Starts (or reuses) a private PostgreSQL cluster under ./.consentd/, applies migrations as an owner role, \
            creates a demo tenant, prints one new API key per scope and serves on http://127.0.0.1:8080 as the \
            runtime role. Ctrl-C stops the server and the cluster it started.
            """)

    @Option(help: "The port to serve on.") var port: Int = 8080

    static let databaseName = "consentd"
    static let appRole = "consentd_app"
    static let demoTenant = "demo"
    static let keyLabel = "consentd dev"

    func run() async throws {
        guard (1...65535).contains(port) else { throw CommandFailure("--port must be from 1 to 65535") }
        let logger = Logger(label: "consentd.dev")
        let workspace = try DevWorkspace(directory: FileManager.default.currentDirectoryPath + "/.consentd")
        let cluster: LocalCluster
        do {
            cluster = try workspace.cluster()
        } catch let error as PostgresNotInstalled {
            throw CommandFailure(error.description)
        }
        try cluster.initializeIfNeeded(logger: logger)
        let startedHere = !cluster.isRunning()
        if startedHere { try cluster.start(logger: logger) }

        do {
            try await serve(cluster: cluster, workspace: workspace, logger: logger)
        } catch {
            if startedHere { cluster.stop(logger: logger) }
            throw error
        }
        if startedHere { cluster.stop(logger: logger) }
    }

    func serve(cluster: LocalCluster, workspace: DevWorkspace, logger: Logger) async throws {
        let superuser = cluster.superuserURL
        try await withRunningClient(superuser, logger: logger) { client in
            try await DatabaseProvisioner.ensureOwnerRole(superuser: client, logger: logger)
            try await DatabaseProvisioner.ensureDatabase(Self.databaseName, superuser: client, logger: logger)
        }
        let ownerURL = superuser.with(username: DatabaseProvisioner.ownerRole, database: Self.databaseName)
        let (tenant, keys, shop) = try await withRunningClient(ownerURL, logger: logger) { client in
            try await MigrationRunner.bundled().migrate(client: client, appRole: Self.appRole, logger: logger)
            let (tenant, keys) = try await Self.demoTenantWithFreshKeys(client: client, logger: logger)
            let shop = try await Self.demoShop(tenant: tenant, keys: keys, client: client, logger: logger)
            return (tenant, keys, shop)
        }

        var configuration = ServeConfiguration(
            database: ownerURL.with(username: Self.appRole),
            masterKey: try workspace.key(named: "master"),
            signingKey: try workspace.key(named: "signing"),
            host: "127.0.0.1", port: port)
        // A local test receiver is the usual target of a webhook on a developer's machine.
        configuration.webhookTargets.allowLoopback = true
        // The tuning variables of `serve` apply here too, so `scripts/bench` can measure both cache settings.
        do {
            try configuration.readTuning(ProcessInfo.processInfo.environment)
        } catch {
            throw CommandFailure("\(error)")
        }
        try await ServiceStarter.run(configuration, demoShop: shop, logger: logger) { port in
            Self.printBanner(port: port, tenant: tenant, keys: keys, ownerURL: ownerURL)
        }
    }

    /// Keys are stored hashed and cannot be shown again, so every run revokes the previous run's keys and
    /// issues new ones.
    static func demoTenantWithFreshKeys(client: PostgresClient, logger: Logger) async throws -> (Tenant, [IssuedAPIKey])
    {
        let tenants = TenantStore(client: client)
        let tenant: Tenant
        do {
            tenant = try await tenants.named(demoTenant, logger: logger)
        } catch TenantStoreError.notFound {
            tenant = try await tenants.create(TenantName(demoTenant)!, logger: logger)
        }
        let keyStore = APIKeyStore(client: client)
        for record in try await keyStore.list(tenantId: tenant.id, logger: logger)
        where record.label == keyLabel && record.revokedAt == nil {
            _ = try await keyStore.revoke(tenantId: tenant.id, keyId: record.id, logger: logger)
        }
        var issued: [IssuedAPIKey] = []
        for scope in Scope.allCases {
            issued.append(
                try await keyStore.create(tenantId: tenant.id, scopes: [scope], label: keyLabel, logger: logger))
        }
        return (tenant, issued)
    }

    /// The demo checkout's notice (made once) and the `consent:write` key its "shop backend" uses.
    static func demoShop(tenant: Tenant, keys: [IssuedAPIKey], client: PostgresClient, logger: Logger) async throws
        -> DemoShop
    {
        guard let write = keys.first(where: { $0.record.scopes.contains(.consentWrite) }),
            let admin = keys.first(where: { $0.record.scopes.contains(.admin) })
        else { throw CommandFailure("the demo tenant has no consent:write or admin key") }
        let noticeId = try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT id FROM notices WHERE channel = 'whatsapp' AND language = 'en' AND text = \(DemoShop.noticeText)
                ORDER BY version DESC LIMIT 1
                """, logger: logger)
            for try await id in rows.decode(UUID.self) { return id }
            return try await NoticeStore.create(
                tenantId: tenant.id, channel: .whatsapp, language: "en", text: DemoShop.noticeText,
                purposes: DemoShop.noticePurposes,
                actor: CallerIdentity(keyId: admin.record.id, tenantId: tenant.id, scopes: [.admin]), on: connection,
                logger: logger
            ).id
        }
        return DemoShop(tenantId: tenant.id, writeKeyId: write.record.id, noticeId: noticeId)
    }

    static func printBanner(port: Int, tenant: Tenant, keys: [IssuedAPIKey], ownerURL: DatabaseURL) {
        let base = "http://127.0.0.1:\(port)"
        var lines = [
            "",
            "ConsentLedger is running (dev).",
            "  API        \(base)/v1",
            "  health     \(base)/healthz   readiness \(base)/readyz",
            "  demo       \(base)/demo/checkout (the checkout widget, end to end)",
            "  console    \(base)/console (sign in with the dpo key below)",
            "  database   psql '\(ownerURL.urlString)'",
            "  tenant     \(tenant.name) (\(tenant.id.lowercased))",
            "  API keys (new each run; the previous run's are revoked):",
        ]
        for key in keys {
            let scope = key.record.scopes.first?.rawValue ?? ""
            lines.append("    \(scope.padding(toLength: 14, withPad: " ", startingAt: 0)) \(key.token.value)")
        }
        lines += ["", "  try: curl -H 'Authorization: Bearer \(keys.last?.token.value ?? "")' \(base)/v1/keys", ""]
        // Written straight to the descriptor: print() buffers when standard output is a pipe.
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
