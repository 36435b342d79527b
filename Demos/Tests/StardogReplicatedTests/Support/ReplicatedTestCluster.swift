import DemoTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import StardogReplicated

/// One three-server ZooKeeper ensemble for every suite of this target (each test has its own
/// cluster name). Suites run in parallel: the first caller starts it, the others await that start.
actor SharedEnsemble {
    static let shared = SharedEnsemble()
    private var starting: Task<ZooKeeperEnsemble, any Error>?

    func get() async throws -> ZooKeeperEnsemble {
        if let starting { return try await starting.value }
        let start = Task { try await ZooKeeperEnsemble.start(size: 3) }
        starting = start
        return try await start.value
    }
}

/// `replicated` processes for the cluster tests: one directory per node (its stardog.properties,
/// its home), all in one cluster named after the test.
final class ReplicatedTestCluster: DemoTestCluster<ReplicatedTestNode>, @unchecked Sendable {
    let zkConnect: String
    static let auth = (user: "admin", password: "s3cret")

    init(zkConnect: String, name: String = #function) throws {
        self.zkConnect = zkConnect
        try super.init(product: "replicated", name: name)
    }

    static func make(name: String = #function) async throws -> ReplicatedTestCluster {
        try ReplicatedTestCluster(zkConnect: try await SharedEnsemble.shared.get().connectString, name: name)
    }

    /// Adds `count` nodes (not started).
    @discardableResult
    func addNodes(_ count: Int, settings: [String: String] = [:]) throws -> [ReplicatedTestNode] {
        var added: [ReplicatedTestNode] = []
        for _ in 0..<count {
            let node = try ReplicatedTestNode(index: nodes.count + 1, cluster: self, settings: settings)
            nodes.append(node)
            added.append(node)
        }
        return added
    }

    /// Starts nodes one after another, each once the previous one is a member.
    func startAll() async throws {
        for node in nodes {
            try node.start()
            try await node.waitUntilHealthy()
        }
    }


    /// The member addresses ZooKeeper lists, read by a node.
    func members(via node: ReplicatedTestNode) async throws -> [String] {
        let reply = try await node.request(.GET, "/admin/cluster")
        try #require(reply.status == 200, "\(reply.body)")
        struct Nodes: Decodable { var nodes: [String] }
        return try JSONDecoder().decode(Nodes.self, from: Data(reply.body.utf8)).nodes
    }

    /// The running nodes answering `/admin/cluster/coordinator` with 200.
    func coordinators() async -> [ReplicatedTestNode] {
        var result: [ReplicatedTestNode] = []
        for node in nodes where node.isRunning {
            if (try? await node.request(.GET, "/admin/cluster/coordinator"))?.status == 200 { result.append(node) }
        }
        return result
    }

    /// A ZooKeeper client with the cluster's credentials (or none).
    func zooKeeper(authenticated: Bool = true) async throws -> ZooKeeperClient {
        var configuration = ZooKeeperClient.Configuration()
        if authenticated { configuration.digestCredentials = [.init(user: Self.auth.user, password: Self.auth.password)] }
        let client = try ZooKeeperClient(connectString: zkConnect, configuration: configuration)
        _ = try await client.connect()
        return client
    }

    var layout: ClusterLayout { ClusterLayout(clusterName: clusterName, user: Self.auth.user, password: Self.auth.password) }
}

final class ReplicatedTestNode: DemoTestNode, @unchecked Sendable {
    let index: Int
    let port: Int
    var settings: [String: String]
    unowned let cluster: ReplicatedTestCluster
    var address: String { "127.0.0.1:\(port)" }
    var configPath: String { directory + "/stardog.properties" }

    init(index: Int, cluster: ReplicatedTestCluster, settings: [String: String]) throws {
        self.index = index
        self.cluster = cluster
        port = try freeLoopbackPort()
        self.settings = settings
        try super.init(label: "node \(index)", executable: cluster.executable, directory: cluster.directory + "/node\(index)", logName: "replicated.log")
        try writeProperties()
    }

    /// The node's stardog.properties: the cluster's settings and this node's.
    var properties: String {
        var values: [String: String] = [
            "pack.enabled": "true",
            "pack.zookeeper.address": cluster.zkConnect,
            "pack.node.address": "127.0.0.1",
            "pack.zookeeper.auth": "\(ReplicatedTestCluster.auth.user):\(ReplicatedTestCluster.auth.password)",
            "pack.cluster.name": cluster.clusterName,
            "pack.session.timeout": "4s",
            "pack.node.commit.timeout": "2s",
            "pack.node.join.retry.delay": "200ms",
            "stardog.http.port": "\(port)",
            "stardog.home": "home",
        ]
        values.merge(settings) { $1 }
        return values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
    }

    /// Writes stardog.properties without starting (for the command-line tools that read it).
    func writeProperties() throws {
        try properties.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func start() throws {
        try start(configuration: properties, file: "stardog.properties")
    }

    /// One HTTP request to this node.
    func request(_ method: HTTPMethod, _ path: String, body: String? = nil, timeout: Duration = .seconds(20)) async throws -> Reply {
        try await Self.request(method, address: address, path, body: body, timeout: timeout)
    }

    var isHealthy: Bool {
        get async { (try? await request(.GET, "/admin/healthcheck", timeout: .seconds(2)))?.status == 200 }
    }

    func waitUntilHealthy(timeout: Duration = .seconds(60)) async throws {
        try await eventually("node \(index) is a synced member\n\(log.suffix(3000))", timeout: timeout) { await isHealthy }
    }

    /// Commits one body as one transaction (`POST /<db>/add`).
    func add(_ ntriples: String, to database: String = "db") async throws -> Reply {
        try await request(.POST, "/\(database)/add", body: ntriples)
    }

    /// The database's triples as a set of N-Triples lines, or nil when the node does not answer 200.
    func triples(_ database: String = "db") async -> Set<String>? {
        guard let reply = try? await request(.GET, "/\(database)/triples", timeout: .seconds(5)), reply.status == 200 else { return nil }
        return Set(reply.body.split(separator: "\n").map(String.init))
    }

}

/// `<urn:test:s> <urn:test:p> "value" .`
func triple(_ value: String) -> String { "<urn:test:s\(value)> <urn:test:p> \"\(value)\" ." }
