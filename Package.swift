// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-zookeeper-coordination",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ZooKeeper", targets: ["ZooKeeper"]),
        .library(name: "ZooKeeperTesting", targets: ["ZooKeeperTesting"]),
        .library(name: "Coordination", targets: ["Coordination"]),
        .library(name: "SequinsKV", targets: ["SequinsKV"]),
        .library(name: "SenseiSearch", targets: ["SenseiSearch"]),
        .library(name: "DemoSupport", targets: ["DemoSupport"]),
        .library(name: "StardogReplicated", targets: ["StardogReplicated"]),
        .executable(name: "kv", targets: ["kv"]),
        .executable(name: "kv-demo", targets: ["kv-demo"]),
        .executable(name: "search", targets: ["search"]),
        .executable(name: "replicated", targets: ["replicated"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The demos: HTTP server and client, configuration files, command lines, zlib.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
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
            ]
        ),
        // Recipes on top of the client: membership, distributed lock, leader election.
        .target(
            name: "Coordination",
            dependencies: [
                "ZooKeeper",
                .product(name: "Logging", package: "swift-log"),
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
        // Demo 1: sequins (a statically sharded, replicated key-value server) on the library.
        .target(
            name: "SequinsKV",
            dependencies: [
                "ZooKeeper",
                "Coordination",
                "DemoSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Sources/Demos/SequinsKV"
        ),
        // What the demo servers share: running Swift concurrency on NIO's event loops, the HTTP
        // server and client between nodes, Java properties files (Sensei's and Stardog's configuration).
        .target(
            name: "DemoSupport",
            dependencies: [
                "Coordination",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Sources/Demos/DemoSupport"
        ),
        // The replicated (Stardog) demo's library: RDF, the local store, the cluster protocol, HTTP.
        .target(
            name: "StardogReplicated",
            dependencies: [
                "ZooKeeper",
                "Coordination",
                "DemoSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/Demos/StardogReplicated"
        ),
        .executableTarget(
            name: "replicated",
            dependencies: [
                "StardogReplicated",
                "DemoSupport",
                "ZooKeeper",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Demos/replicated"
        ),
        // The search (Sensei) demo's library: configuration, schema, index, queries, merging, routing.
        .target(
            name: "SenseiSearch",
            dependencies: [
                "ZooKeeper",
                "Coordination",
                "DemoSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/Demos/SenseiSearch"
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
            path: "Sources/Demos/search"
        ),
        .executableTarget(
            name: "kv",
            dependencies: [
                "SequinsKV",
                "DemoSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Demos/kv"
        ),
        // The README's main job: an embedded ZooKeeper, sample data and three kv nodes.
        .executableTarget(
            name: "kv-demo",
            dependencies: [
                "SequinsKV",
                "ZooKeeperTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Demos/kv-demo"
        ),
        .testTarget(
            name: "SequinsKVTests",
            dependencies: [
                "SequinsKV",
                "DemoSupport",
                "Coordination",
                "ZooKeeper",
                "ZooKeeperTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StardogReplicatedTests",
            dependencies: [
                "StardogReplicated",
                "DemoSupport",
                "ZooKeeper",
                "ZooKeeperTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SenseiSearchTests",
            dependencies: [
                "SenseiSearch",
                "DemoSupport",
                "ZooKeeper",
                "ZooKeeperTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "CoordinationTests",
            dependencies: [
                "Coordination",
                "ZooKeeper",
                "ZooKeeperTesting",
            ]
        ),
        .testTarget(
            name: "ZooKeeperTests",
            dependencies: [
                "ZooKeeper",
                "ZooKeeperTesting",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
