// swift-tools-version: 6.1
import PackageDescription

// The demo systems: three clustered systems reproduced on the library (kv: sequins, replicated:
// Stardog's cluster, search: Sensei). A package of their own that depends on the library by path,
// so that the library's users never resolve the demos' dependencies.
let package = Package(
    name: "Demos",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kv", targets: ["kv"]),
        .executable(name: "kv-demo", targets: ["kv-demo"]),
        .executable(name: "replicated", targets: ["replicated"]),
        .executable(name: "search", targets: ["search"]),
        // For the benchmarks package.
        .library(name: "DemoSupport", targets: ["DemoSupport"]),
        .library(name: "SequinsKV", targets: ["SequinsKV"]),
        .library(name: "SenseiSearch", targets: ["SenseiSearch"]),
        .library(name: "StardogReplicated", targets: ["StardogReplicated"]),
    ],
    dependencies: [
        .package(name: "swift-zookeeper-coordination", path: "../"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // An HTTP client for the tests (independent of the demos' own); configuration files,
        // command lines, zlib.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        // Demo 1: sequins (a statically sharded, replicated key-value server) on the library.
        .target(
            name: "SequinsKV",
            dependencies: [
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "Coordination", package: "swift-zookeeper-coordination"),
                "DemoSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Sources/SequinsKV"
        ),
        // What the demo servers share: a node's lifetime and ZooKeeper client, Swift concurrency on
        // NIO's event loops, the HTTP server and the client between nodes, durable files, Java
        // properties files (Sensei's and Stardog's configuration).
        .target(
            name: "DemoSupport",
            dependencies: [
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "Coordination", package: "swift-zookeeper-coordination"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Sources/DemoSupport"
        ),
        // The replicated (Stardog) demo's library: RDF, the local store, the cluster protocol, HTTP.
        .target(
            name: "StardogReplicated",
            dependencies: [
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "Coordination", package: "swift-zookeeper-coordination"),
                "DemoSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Sources/StardogReplicated"
        ),
        .executableTarget(
            name: "replicated",
            dependencies: [
                "StardogReplicated",
                "DemoSupport",
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/replicated"
        ),
        // The search (Sensei) demo's library: configuration, schema, index, queries, merging, routing.
        .target(
            name: "SenseiSearch",
            dependencies: [
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "Coordination", package: "swift-zookeeper-coordination"),
                "DemoSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/SenseiSearch"
        ),
        .executableTarget(
            name: "search",
            dependencies: [
                "SenseiSearch",
                "DemoSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/search"
        ),
        .executableTarget(
            name: "kv",
            dependencies: [
                "SequinsKV",
                "DemoSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/kv"
        ),
        // The README's main job: an embedded ZooKeeper, sample data and three kv nodes.
        .executableTarget(
            name: "kv-demo",
            dependencies: [
                "SequinsKV",
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "DemoSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/kv-demo"
        ),
        // What the demos' tests share: a demo node process with its configuration, log and HTTP
        // API, and a cluster of them for one test.
        .target(
            name: "DemoTestSupport",
            dependencies: [
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/DemoTestSupport"
        ),
        .testTarget(
            name: "DemoSupportTests",
            dependencies: [
                "DemoSupport",
                "DemoTestSupport",
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SequinsKVTests",
            dependencies: [
                "DemoTestSupport",
                "SequinsKV",
                "DemoSupport",
                .product(name: "Coordination", package: "swift-zookeeper-coordination"),
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StardogReplicatedTests",
            dependencies: [
                "DemoTestSupport",
                "StardogReplicated",
                "DemoSupport",
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SenseiSearchTests",
            dependencies: [
                "DemoTestSupport",
                "SenseiSearch",
                "DemoSupport",
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
