// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "swift-zookeeper-coordination",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ZooKeeper", targets: ["ZooKeeper"]),
        .library(name: "ZooKeeperTesting", targets: ["ZooKeeperTesting"]),
        .library(name: "Coordination", targets: ["Coordination"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
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
