// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "revenant",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "revenant", targets: ["revenant"]),
        .executable(name: "bench-store", targets: ["bench-store"]),
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
        // The module map. Each target's dependency list is the architecture: a layer sees only
        // the layers below it, and nothing but the daemon sees the kernel.
        //
        //   revenant (CLI)      bench-store
        //     │      └──────┐       │
        //   RevenantDaemon   │       │
        //     │  │  │  └──RevenantQuery
        //     │  │  │          │
        //     │  │  RevenantOutputs   RevenantStore
        //     │  RevenantKernel │           │
        //     └─────┴───────────┴─ RevenantHost
        //                          RevenantCore (pure)

        // The event structs shared with bpf/ (header only).
        .target(name: "CRevenantABI"),
        // The generated skeletons behind a tiny C API (loader, pinning); `make bpf` generates them.
        .target(
            name: "CRevenantBPF",
            dependencies: ["CRevenantABI"],
            linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]
        ),
        // System calls Glibc does not wrap: pidfds, openat2, fanotify with file handles.
        .target(name: "CRevenantOS"),
        // Process-wide SQLite settings (sqlite3_config is variadic: not callable from Swift).
        .target(name: "CRevenantSQLite", linkerSettings: [.linkedLibrary("sqlite3")]),
        // Pure: identity, events, decoding, the process table, attribution, policy. No I/O.
        .target(name: "RevenantCore", dependencies: [
            "CRevenantABI",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Reading the live host: /proc, clocks, configuration readers, safe reads, containers.
        .target(name: "RevenantHost", dependencies: ["RevenantCore", "CRevenantOS"]),
        // The kernel side: loader, ring-buffer reader, enforcer, pins, the kernel probe.
        .target(name: "RevenantKernel", dependencies: ["RevenantCore", "RevenantHost", "CRevenantABI", "CRevenantBPF", "CRevenantOS"]),
        // SQLite: schema and migrations, writes, reads, leaves, retention.
        .target(name: "RevenantStore", dependencies: [
            "RevenantCore", "RevenantHost", "CRevenantSQLite",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        // Answers from the store: who-spawned, timeline, verify, export, pictures.
        .target(name: "RevenantQuery", dependencies: ["RevenantCore", "RevenantHost", "RevenantStore", "CRevenantOS"]),
        // What leaves the daemon: the audit log and its chain, forwarding, metrics.
        .target(name: "RevenantOutputs", dependencies: [
            "RevenantCore", "RevenantHost",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The daemon's services, and what else runs the kernel programs (trace, verify, doctor).
        .target(name: "RevenantDaemon", dependencies: [
            "RevenantCore", "RevenantHost", "RevenantKernel", "RevenantStore", "RevenantQuery", "RevenantOutputs", "CRevenantOS",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(
            name: "revenant",
            dependencies: [
                "RevenantCore", "RevenantQuery", "RevenantDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Builds a large synthetic store and times the queries on it (make bench).
        .executableTarget(
            name: "bench-store",
            dependencies: [
                "RevenantCore", "RevenantStore", "RevenantQuery",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // What the tests share: temp dirs, a process runner, record builders, the daemon under test.
        .target(name: "RevenantTestSupport", dependencies: ["RevenantCore", "RevenantHost", "RevenantStore"], path: "Tests/RevenantTestSupport"),
        .testTarget(name: "RevenantCoreTests", dependencies: ["RevenantCore", "CRevenantABI", "RevenantTestSupport"]),
        .testTarget(name: "RevenantTests", dependencies: [
            "RevenantCore", "RevenantHost", "RevenantKernel", "RevenantStore", "RevenantQuery", "RevenantOutputs", "RevenantDaemon",
            "RevenantTestSupport",
            // Builds stores at older schema versions, to test their migration.
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
