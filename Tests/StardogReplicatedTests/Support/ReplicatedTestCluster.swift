import AsyncHTTPClient
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
final class ReplicatedTestCluster: @unchecked Sendable {
    let directory: String
    let clusterName: String
    let zkConnect: String
    var nodes: [ReplicatedTestNode] = []
    static let binary = ChildProcess.builtExecutable(named: "replicated")
    static let auth = (user: "admin", password: "s3cret")

    init(zkConnect: String, name: String = #function) throws {
        clusterName = name.filter { $0.isLetter } + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        directory = NSTemporaryDirectory() + "replicated-" + clusterName
        self.zkConnect = zkConnect
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the replicated executable first (swift build)")
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

    func tearDown() async {
        for node in nodes where node.isRunning {
            node.resume()
            await node.kill9()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func logs() -> String { nodes.map { "--- node \($0.index) ---\n" + $0.log.suffix(4000) }.joined(separator: "\n") }

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

final class ReplicatedTestNode: @unchecked Sendable {
    let index: Int
    let directory: String
    let port: Int
    let child: ChildProcess
    var settings: [String: String]
    var environment: [String: String] = [:]
    let cluster: ReplicatedTestCluster
    var address: String { "127.0.0.1:\(port)" }
    var configPath: String { directory + "/stardog.properties" }
    var log: String { child.log }

    init(index: Int, cluster: ReplicatedTestCluster, settings: [String: String]) throws {
        self.index = index
        self.cluster = cluster
        directory = cluster.directory + "/node\(index)"
        port = try freeLoopbackPort()
        child = ChildProcess(logPath: directory + "/replicated.log")
        self.settings = settings
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeProperties()
    }

    func writeProperties() throws {
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
        let text = values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func start() throws {
        try writeProperties()
        try child.start(executable: ReplicatedTestCluster.binary, arguments: ["--config", configPath, "--log-level", "debug"], environment: environment)
    }

    var isRunning: Bool { child.isRunning }
    @discardableResult func waitForExit() async -> Int32? { await child.waitForExit() }
    func kill9() async { await child.kill9() }
    func pause() { child.pause() }
    func resume() { child.resume() }
    func stop() async { await child.stop() }

    struct Reply: Sendable {
        var status: Int
        var body: String
    }

    /// One HTTP request to this node.
    func request(_ method: HTTPMethod, _ path: String, body: String? = nil, timeout: Duration = .seconds(20)) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://\(address)\(path)")
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout / .milliseconds(1))))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), body: String(buffer: bytes))
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

    func logLines(containing text: String) -> [String] { log.split(separator: "\n").map(String.init).filter { $0.contains(text) } }
}

/// `<urn:test:s> <urn:test:p> "value" .`
func triple(_ value: String) -> String { "<urn:test:s\(value)> <urn:test:p> \"\(value)\" ." }
