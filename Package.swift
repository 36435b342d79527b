// swift-tools-version: 6.1
import PackageDescription

// The library: the ZooKeeper client, the coordination recipes, and the test kit that runs real
// ZooKeeper servers. Only what a user of the library needs is declared here: the demo systems
// (Demos/) and the benchmarks (Benchmarks/) are packages of their own that depend on this one by
// path, so a package that depends on this one never resolves their dependencies.
let package = Package(
    name: "swift-zookeeper-coordination",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ZooKeeper", targets: ["ZooKeeper"]),
        .library(name: "Coordination", targets: ["Coordination"]),
        // Real ZooKeeper servers, fault proxies and child processes for tests (of this package,
        // of the demos, and of applications that want the same).
        .library(name: "ZooKeeperTesting", targets: ["ZooKeeperTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Spans around operations and recipes (no-ops unless the application bootstraps a tracer).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // SHA-1 for digest ACLs.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The test kit's fault proxy.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // The ZooKeeper C client (Debian: libzookeeper-mt-dev). Only the ZooKeeper target imports it.
        .systemLibrary(
            name: "CZooKeeper",
            providers: [.apt(["libzookeeper-mt-dev"])]
        ),
        .target(
            name: "ZooKeeper",
            dependencies: [
                "CZooKeeper",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // Recipes on top of the client: locks, elections, membership, partitions, version gates.
        .target(
            name: "Coordination",
            dependencies: [
                "ZooKeeper",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "ZooKeeperTesting",
            dependencies: [
                "ZooKeeper",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // A runnable tour of the client against a server it starts (not a product).
        .executableTarget(
            name: "zk-example",
            dependencies: [
                "ZooKeeper",
                "ZooKeeperTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/ZooKeeperExample"
        ),
        // A plain client of the recipes for process-level fault tests (stopped and resumed past
        // its session timeout): joins a group, follows members() and an election's observe().
        .executableTarget(
            name: "coordination-probe",
            dependencies: [
                "Coordination",
                "ZooKeeper",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/CoordinationProbe"
        ),
        // Every Swift block of the README, Documentation/ and the DocC articles, compiled as
        // written (a snippet may use a connected `client` and defines everything else it uses).
        .testTarget(
            name: "DocumentationSnippetTests",
            dependencies: [
                "ZooKeeper",
                "Coordination",
                "ZooKeeperTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["DocumentationSnippetsPlugin"]
        ),
        .plugin(
            name: "DocumentationSnippetsPlugin",
            capability: .buildTool(),
            dependencies: ["documentation-snippet-extractor"]
        ),
        .executableTarget(
            name: "documentation-snippet-extractor",
            path: "Plugins/DocumentationSnippetExtractor"
        ),
        .testTarget(
            name: "CoordinationTests",
            dependencies: [
                "Coordination",
                "ZooKeeper",
                "ZooKeeperTesting",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            // The Apache Curator peer of the interoperability tests, compiled with javac at test time.
            exclude: ["Curator"]
        ),
        .testTarget(
            name: "ZooKeeperTests",
            dependencies: [
                "ZooKeeper",
                "ZooKeeperTesting",
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
