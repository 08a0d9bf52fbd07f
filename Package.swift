// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "revenant",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "revenant", targets: ["revenant"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
    ],
    targets: [
        // The event structs shared with bpf/revenant.bpf.c (header only).
        .target(name: "CRevenantABI"),
        // The generated skeleton behind a tiny C API; `make bpf` generates it.
        .target(
            name: "CRevenantBPF",
            dependencies: ["CRevenantABI"],
            linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]
        ),
        // Process-wide SQLite settings (sqlite3_config is variadic: not callable from Swift).
        .target(name: "CRevenantSQLite", linkerSettings: [.linkedLibrary("sqlite3")]),
        // Pure: identity, events, decoding, the process table. No I/O.
        .target(name: "RevenantCore", dependencies: [
            "CRevenantABI",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // I/O: the BPF loader and ring-buffer reader, /proc.
        .target(
            name: "RevenantSystem",
            dependencies: [
                "RevenantCore", "CRevenantBPF", "CRevenantSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "revenant",
            dependencies: [
                "RevenantCore", "RevenantSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What the tests share: temp dirs, a process runner, record builders, the daemon under test.
        .target(name: "RevenantTestSupport", dependencies: ["RevenantCore", "RevenantSystem"], path: "Tests/RevenantTestSupport"),
        .testTarget(name: "RevenantCoreTests", dependencies: ["RevenantCore", "CRevenantABI", "RevenantTestSupport"]),
        .testTarget(name: "RevenantSystemTests", dependencies: [
            "RevenantSystem", "RevenantCore", "RevenantTestSupport",
            // Builds stores at older schema versions, to test their migration.
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
