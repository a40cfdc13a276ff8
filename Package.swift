// swift-tools-version:6.1
import PackageDescription

let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-reverb",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "reverb", targets: ["ReverbCLI"]),
        .executable(name: "reverb-bench", targets: ["ReverbBench"]),
        .library(name: "Reverb", targets: ["Reverb"]),
        .library(name: "ReverbRedis", targets: ["ReverbRedis"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Tests only: starts redis-server and openssl (Foundation's Process crashes under parallel tests).
        // Its default Foundation trait adds nothing these tests use.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2", traits: []),
        // Tests only: `FilePath` for Subprocess's paths off Apple platforms (there the SDK's System has it).
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // glibc's malloc_trim, to give memory back after load drops (MemoryTrimmer).
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "ReverbRedis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        .target(
            name: "Reverb",
            dependencies: [
                "ReverbRedis",
                "COpenSSL",
                "CMalloc",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "ReverbCLI",
            dependencies: [
                "Reverb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "ReverbBench",
            dependencies: [
                "Reverb",
                "ReverbRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "ReverbBenchTests",
            dependencies: [
                "ReverbBench",
                "Reverb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "ReverbTests",
            dependencies: [
                "Reverb",
                "ReverbRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "ReverbRedisTests",
            dependencies: [
                "ReverbRedis",
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system", condition: .when(platforms: [.linux])),
            ],
            swiftSettings: settings
        ),
        .testTarget(
            name: "ReverbIntegrationTests",
            dependencies: [
                "Reverb",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
    ] + fuzzTargets
)

/// libFuzzer harnesses, one per parser of outside bytes (`Fuzz/README.md`). A plain `swift build`
/// makes each a corpus-replay tool; `make fuzz` builds them with `-sanitize=fuzzer,address -DFUZZING`.
var fuzzTargets: [Target] {
    let nio: [Target.Dependency] = [
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
    ]
    let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
    let harnesses: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzWebSocketFrames", nio + [logging, .product(name: "NIOWebSocket", package: "swift-nio")]),
        ("FuzzClientMessage", nio),
        ("FuzzHTTPRequest", nio + [logging, .product(name: "NIOHTTP1", package: "swift-nio")]),
        ("FuzzClusterEnvelope", nio + ["ReverbRedis", logging, .product(name: "NIOPosix", package: "swift-nio")]),
        ("FuzzRESP", nio + ["ReverbRedis"]),
        ("FuzzDotEnv", []),
        ("FuzzConfigFile", nio + ["ReverbRedis", logging]),
        ("FuzzRedisURL", ["ReverbRedis"]),
        ("FuzzRedisTopology", nio + ["ReverbRedis"]),
        ("FuzzDashboard", nio + [logging, .product(name: "NIOHTTP1", package: "swift-nio")]),
    ]
    let support = Target.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport", swiftSettings: settings)
    return [support]
        + harnesses.map { harness in
            .executableTarget(
                name: harness.name, dependencies: ["Reverb", "FuzzSupport"] + harness.dependencies,
                path: "Fuzz/\(harness.name)", exclude: ["corpus", "regressions"], swiftSettings: settings)
        }
}
