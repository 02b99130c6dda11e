// swift-tools-version:6.2
import PackageDescription

// Strict concurrency comes with the Swift 6 language mode; these keep imports and existentials explicit.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "consentledger",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "consentd", targets: ["consentd"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
    ],
    targets: [
        // Pure domain: no database, no HTTP.
        .target(
            name: "ConsentCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            // The template lint rulebook: data, versioned, loaded once (TemplateLinter.bundled()).
            resources: [.copy("TemplateLint/template-lint-rules.json")],
            swiftSettings: swiftSettings
        ),
        // The plain-SQL migrations in sql/migrations, shipped as a resource bundle.
        .target(
            name: "ConsentSchema",
            dependencies: ["ConsentCore"],
            path: "sql",
            resources: [.copy("migrations"), .copy("roles")],
            swiftSettings: swiftSettings
        ),
        // Private PostgreSQL clusters for `consentd dev` and the tests (initdb / pg_ctl).
        .target(
            name: "LocalPostgres",
            dependencies: ["ConsentCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConsentStore",
            dependencies: [
                "ConsentCore",
                "ConsentSchema",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Sends change webhooks (WebhookDeliverer).
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP: decodes, calls the store, encodes. It never names the database driver (see docs/contributing.md).
        .target(
            name: "ConsentServer",
            dependencies: [
                "ConsentCore",
                "ConsentStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Mustache", package: "swift-mustache"),
                // The console's import upload, a file in a browser form (ConsoleImportUpload).
                .product(name: "MultipartKit", package: "multipart-kit"),
            ],
            // Every HTML page's Mustache template, loaded and checked when the router is built.
            resources: [.copy("Templates")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "consentd",
            dependencies: [
                "ConsentCore",
                "ConsentStore",
                "ConsentServer",
                "LocalPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConsentTesting",
            dependencies: [
                "ConsentCore",
                "ConsentStore",
                "LocalPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConsentCoreTests",
            dependencies: ["ConsentCore"],
            // The labelled template lint corpus, read by path (TemplateLintCorpusTests).
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConsentStoreTests",
            dependencies: [
                "ConsentCore", "ConsentStore", "ConsentTesting", "LocalPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConsentServerTests",
            dependencies: [
                "ConsentCore", "ConsentStore", "ConsentServer", "ConsentTesting", "LocalPostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        // Runs the built `consentd` binary as an operator would.
        .testTarget(
            name: "ConsentdTests",
            dependencies: [
                "ConsentCore", "ConsentStore", "ConsentTesting",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
