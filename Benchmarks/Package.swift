// swift-tools-version: 6.1
import PackageDescription

// The benchmarks are their own package so that the library's users never resolve their
// dependencies; they measure the library (zk-bench, the pure cores) and the demos.
let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-zookeeper-coordination", path: "../"),
        .package(name: "Demos", path: "../Demos"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The shared coordination workloads (../shared/bench-peers/WORKLOADS.md) for comparing
        // this library with the raw C client, Apache Curator and kazoo on one server.
        .executableTarget(
            name: "zk-bench",
            dependencies: [
                .product(name: "ZooKeeper", package: "swift-zookeeper-coordination"),
                .product(name: "Coordination", package: "swift-zookeeper-coordination"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The kv (sequins) demo's measurements: SequenceFile loading against plain decoding, and
        // the HTTP servers that scripts/bench-kv-http drives with wrk.
        .executableTarget(
            name: "kv-bench",
            dependencies: [
                .product(name: "SequinsKV", package: "Demos"),
                .product(name: "DemoSupport", package: "Demos"),
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // The search (Sensei) demo against SQLite FTS5 (run-search-fts5.sh).
        .executableTarget(
            name: "search-bench",
            dependencies: [
                .product(name: "SenseiSearch", package: "Demos"),
                .product(name: "DemoSupport", package: "Demos"),
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Micro-benchmarks of the pure cores (package-benchmark): `swift package benchmark`.
        .executableTarget(
            name: "replicated-bench",
            dependencies: [
                .product(name: "ZooKeeperTesting", package: "swift-zookeeper-coordination"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "DemoSupport", package: "Demos"),
            ]
        ),
        .executableTarget(
            name: "CoordinationBenchmarks",
            dependencies: [
                .product(name: "Coordination", package: "swift-zookeeper-coordination"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/CoordinationBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
