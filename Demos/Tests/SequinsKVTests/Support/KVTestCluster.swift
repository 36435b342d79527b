import DemoTestSupport
import Foundation
import NIOCore
import SequinsKV
import Synchronization
import Testing
import ZooKeeperTesting

/// A `kv` process for the cluster tests, like sequins' `cluster_test.go` harness: its own source
/// directory (so a version can be offered to some nodes only), its own store, its own port.
final class KVTestNode: DemoTestNode, @unchecked Sendable {
    let index: Int
    var port: Int
    var settings: [String: String]
    var sharding: [String: String]
    var zkServers: [String]
    var testSettings: [String: String] = [:]
    var zkSessionTimeout = "4s"
    var source: String { directory + "/source" }
    lazy var store: String = directory + "/store"
    var address: String { "127.0.0.1:\(port)" }

    init(index: Int, cluster: KVTestCluster, shardID: String?) throws {
        self.index = index
        port = try freeLoopbackPort()
        zkServers = cluster.zkServers
        let clusterName = cluster.clusterName
        settings = ["require_success_file": "true", "throttle_loads": "\"1ms\""]
        sharding = [
            "enabled": "true", "time_to_converge": "\"300ms\"", "proxy_timeout": "\"600ms\"", "advertised_hostname": "\"127.0.0.1\"",
            "cluster_name": "\"\(clusterName)\"",
        ]
        if let shardID { sharding["shard_id"] = "\"\(shardID)\"" }
        testSettings["upgrade_delay"] = "\"200ms\""
        try super.init(label: "node \(index)", executable: cluster.executable, directory: cluster.directory + "/node\(index)", logName: "kv.log")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
    }

    var configurationText: String {
        var text = "source = \"\(source)\"\nbind = \"127.0.0.1:\(port)\"\nlocal_store = \"\(store)\"\n"
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { text += "\(key) = \(value)\n" }
        text += "\n[sharding]\n"
        for (key, value) in sharding.sorted(by: { $0.key < $1.key }) { text += "\(key) = \(value)\n" }
        text += "\n[zk]\nservers = [\(zkServers.map { "\"\($0)\"" }.joined(separator: ", "))]\nsession_timeout = \"\(zkSessionTimeout)\"\n"
        text += "\n[test]\n"
        for (key, value) in testSettings.sorted(by: { $0.key < $1.key }) { text += "\(key) = \(value)\n" }
        return text
    }

    /// Offers `version` (generated data) in this node's source.
    func makeVersionAvailable(_ version: String, database: String = "db") throws {
        let target = source + "/" + database + "/" + version
        if FileManager.default.fileExists(atPath: target) { return }
        try SampleData.writeVersion(root: source, database: database, version: version, files: 5, records: 500)
    }

    func removeVersion(_ version: String, database: String = "db") {
        try? FileManager.default.removeItem(atPath: source + "/" + database + "/" + version)
    }

    func start() throws {
        try start(configuration: configurationText, file: "sequins.conf")
    }

    func hup() { signal(SIGHUP) }

    /// HUPs the node and waits until it has refreshed from the source.
    func hupAndWaitForRefresh() async throws {
        let before = logLines(containing: "refreshed from the source").count
        hup()
        try await eventually("node \(index) refreshes", timeout: .seconds(30)) {
            self.logLines(containing: "refreshed from the source").count > before
        }
    }

    struct Reply: Sendable {
        var status: Int
        var version: String?
        var proxiedTo: String?
        var shardID: String?
        var contentType: String?
        var lastModified: String?
        var body: String
    }

    /// GET `path` on this node; nil when the node does not answer.
    func get(_ path: String, headers: [(String, String)] = []) async -> Reply? {
        guard let reply = try? await Self.request(.GET, address: address, path, headers: headers, timeout: .seconds(5)) else { return nil }
        return Reply(
            status: reply.status, version: reply.headers.first(name: "X-Sequins-Version"),
            proxiedTo: reply.headers.first(name: "X-Sequins-Proxied-To"), shardID: reply.headers.first(name: "X-Sequins-Shard-ID"),
            contentType: reply.headers.first(name: "Content-Type"), lastModified: reply.headers.first(name: "Last-Modified"),
            body: reply.body)
    }

    /// What a client sees for a random key: the version header, "NONE" (no version), "DOWN", or
    /// "WRONG" (a value that does not belong to the version).
    func observe() async -> String {
        let record = Int.random(in: 0..<500)
        guard let reply = await get("/db/" + SampleData.key(record)) else { return "DOWN" }
        if reply.status > 404 { return "DOWN" }
        guard let version = reply.version else { return "NONE" }
        if reply.status != 200 || reply.body != SampleData.value(record, version: version) { return "WRONG" }
        return version
    }

    /// Waits until this node serves `version` (its keys, with the right values).
    func waitForVersion(_ version: String, timeout: Duration = .seconds(40)) async throws {
        try await eventually("node \(index) serves version \(version)", timeout: timeout) {
            await observe() == version
        }
    }

    /// The partitions /healthz lists for `version`.
    func healthPartitions(version: String, database: String = "db") async -> [Int]? {
        guard let reply = await get("/healthz"), let data = reply.body.data(using: .utf8),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: [String: Any]]]
        else { return nil }
        return json[database]?[version]?["partitions"] as? [Int]
    }
}

/// Records what a node serves over time (sequins' progression), polling every 100 ms.
final class ProgressionRecorder: Sendable {
    private let observed = Mutex<[String]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ node: KVTestNode) {
        let handle = Task { [weak self] in
            while !Task.isCancelled {
                let value = await node.observe()
                guard let self else { return }
                self.observed.withLock { values in if values.last != value { values.append(value) } }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        task.withLock { $0 = handle }
    }

    /// The distinct values seen, in order.
    var progression: [String] { observed.withLock { $0 } }

    /// Waits for the first observation (before a test changes what the node serves).
    func waitForFirstObservation() async throws {
        try await eventually("a first observation", timeout: .seconds(10)) { !self.progression.isEmpty }
    }

    func stop() { task.withLock { $0?.cancel() } }
}

/// A set of `kv` processes against one ZooKeeper.
final class KVTestCluster: DemoTestCluster<KVTestNode>, @unchecked Sendable {
    var zkServers: [String]

    init(zkServers: [String], name: String = #function) throws {
        self.zkServers = zkServers
        try super.init(product: "kv", name: name)
    }

    /// Adds a node with shard id `index + 1`, or a self-assigned one with `selfAssigned`.
    @discardableResult
    func addNode(selfAssigned: Bool = false, minReplication: Int = 2, replication: Int? = nil) throws -> KVTestNode {
        let index = nodes.count
        let node = try KVTestNode(index: index, cluster: self, shardID: selfAssigned ? nil : String(index + 1))
        node.sharding["min_replication"] = String(minReplication)
        if let replication { node.sharding["replication"] = String(replication) }
        nodes.append(node)
        return node
    }

    func makeVersionAvailable(_ version: String) throws {
        for node in nodes { try node.makeVersionAvailable(version) }
    }

    /// Adds `count` nodes, offers them `version`, starts them, and waits until all serve it.
    func startNodes(_ count: Int, serving version: String, minReplication: Int = 2, replication: Int? = nil) async throws {
        for _ in 0..<count { try addNode(minReplication: minReplication, replication: replication) }
        try makeVersionAvailable(version)
        try start()
        for node in nodes { try await node.waitForVersion(version) }
    }

    func start() throws {
        for node in nodes { try node.start() }
    }

    func hupAll() {
        for node in nodes { node.hup() }
    }

}

/// Runs `body` with a fresh cluster on `server` (the shared ZooKeeper by default), kills its
/// processes afterwards, and attaches the nodes' logs to a failure.
func withKVCluster(
    server: ZooKeeperServer? = nil, name: String = #function, _ body: (KVTestCluster) async throws -> Void
) async throws {
    let shared = try await ZooKeeperServer.shared()
    let cluster = try KVTestCluster(zkServers: [(server ?? shared).connectString], name: name)
    try await cluster.run { try await body(cluster) }
}
