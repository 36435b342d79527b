import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

/// `search` processes for the cluster tests, as Sensei's `SenseiStarter`: a shared gateway file of
/// generated documents, one directory per node (its sensei.properties, schema.json, index).
final class SearchTestCluster: @unchecked Sendable {
    let directory: String
    let clusterName: String
    let zkConnect: String
    let corpus: Corpus
    var nodes: [SearchTestNode] = []
    var gatewayPath: String { directory + "/gateway.json" }

    static let binary = ChildProcess.builtExecutable(named: "search")

    init(zkConnect: String, corpus: Corpus, name: String = #function) throws {
        clusterName = "search-" + name.filter { $0.isLetter } + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        directory = NSTemporaryDirectory() + clusterName
        self.zkConnect = zkConnect
        self.corpus = corpus
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the search executable first (swift build)")
    }

    /// Writes the gateway: every document, with one line that is not JSON in the middle.
    func writeGateway() throws {
        var lines = corpus.cars.map(\.json)
        lines.insert("this line is not JSON", at: lines.count / 2)
        try (lines.joined(separator: "\n") + "\n").write(toFile: gatewayPath, atomically: true, encoding: .utf8)
    }

    @discardableResult
    func addNode(id: Int, partitions: String) throws -> SearchTestNode {
        let node = try SearchTestNode(id: id, partitions: partitions, cluster: self)
        nodes.append(node)
        return node
    }

    func tearDown() async {
        for node in nodes where node.isRunning { await node.kill9() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func logs() -> String { nodes.map { "--- node \($0.id) ---\n" + $0.log.suffix(3000) }.joined(separator: "\n") }
}

final class SearchTestNode: @unchecked Sendable {
    let id: Int
    let directory: String
    var serverPort: Int
    var brokerPort: Int
    let child: ChildProcess
    var log: String { child.log }
    var broker: String { "127.0.0.1:\(brokerPort)" }

    /// The ZooKeeper servers this node connects to (a fault proxy, for some tests).
    var zkConnect: String
    /// `sensei.cluster.timeout`: the session timeout in milliseconds.
    var sessionTimeoutMilliseconds = 4000
    let properties: (SearchTestNode) -> String

    init(id: Int, partitions: String, cluster: SearchTestCluster) throws {
        self.id = id
        directory = cluster.directory + "/node\(id)"
        child = ChildProcess(logPath: directory + "/search.log")
        serverPort = try freeLoopbackPort()
        brokerPort = try freeLoopbackPort()
        zkConnect = cluster.zkConnect
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Corpus.schemaJSON.write(toFile: directory + "/schema.json", atomically: true, encoding: .utf8)
        let (clusterName, gatewayPath) = (cluster.clusterName, cluster.gatewayPath)
        properties = { node in
            """
            sensei.node.id=\(id)
            sensei.node.partitions=\(partitions)
            sensei.server.port=\(node.serverPort)
            sensei.broker.port=\(node.brokerPort)
            sensei.cluster.name=\(clusterName)
            sensei.cluster.url=\(node.zkConnect)
            sensei.cluster.timeout=\(node.sessionTimeoutMilliseconds)
            sensei.index.directory=\(node.directory)/index
            sensei.index.manager.default.maxpartition.id=2
            sensei.gateway.class=com.senseidb.gateway.file.LinedFileDataProviderBuilder
            sensei.gateway.file.path=\(gatewayPath)
            sensei.broker.timeout=3000
            sensei.server.requestThreadCorePoolSize=20
            """
        }
    }

    func start() throws {
        try properties(self).write(toFile: directory + "/sensei.properties", atomically: true, encoding: .utf8)
        try child.start(executable: SearchTestCluster.binary, arguments: ["--config", directory + "/sensei.properties", "--log-level", "debug"])
    }

    var isRunning: Bool { child.isRunning }

    @discardableResult
    func waitForExit() async -> Int32? { await child.waitForExit() }

    func kill9() async { await child.kill9() }

    /// SIGSTOP / SIGCONT: the node hangs with its connections open (and its session alive for a while).
    func pause() { child.pause() }
    func resume() { child.resume() }

    func stop() async { await child.stop() }

    /// A request to this node's broker; the status and the body. With `json`, a POST of it; with
    /// `form`, a POST of that `application/x-www-form-urlencoded` body.
    func broker(_ path: String, json: String? = nil, form: String? = nil) async -> (status: Int, body: String)? {
        var request = HTTPClientRequest(url: "http://\(broker)\(path)")
        if let body = json ?? form {
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: body))
        }
        if form != nil { request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded") }
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(15)),
            let body = try? await response.body.collect(upTo: 64 << 20)
        else { return nil }
        return (Int(response.status.code), String(buffer: body))
    }

    /// A search through this node's broker, decoded.
    func search(_ json: String) async throws -> SearchReply {
        let reply = try #require(await broker("/sensei", json: json))
        try #require(reply.status == 200, "\(reply.body)")
        return try SearchReply(reply.body)
    }

    /// The uids `/sensei/get` returns sources for.
    func documentUIDs(get uids: [Int]) async throws -> Set<String> {
        let reply = try #require(await broker("/sensei/get?json=%5B\(uids.map(String.init).joined(separator: ","))%5D"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any])
        return Set(object.keys)
    }

    func sysinfo() async throws -> SearchBroker.NodeInfo {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(serverPort)/node/sysinfo")
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return try JSONDecoder().decode(SearchBroker.NodeInfo.self, from: Data(try await response.body.collect(upTo: 1 << 20).readableBytesView))
    }
}

/// Sensei's response JSON, reduced to Sendable values for the tests.
struct SearchReply: Sendable {
    var numhits: Int?
    var totaldocs: Int?
    var errors: [String]
    var facets: [String: [String: Int]]
    var hitUIDs: [Int]

    init(_ body: String) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        numhits = object["numhits"] as? Int
        totaldocs = object["totaldocs"] as? Int
        errors = (object["errors"] as? [[String: Any]] ?? []).map { ($0["message"] as? String) ?? "" }
        var facets: [String: [String: Int]] = [:]
        for (name, entries) in object["facets"] as? [String: Any] ?? [:] {
            for entry in entries as? [[String: Any]] ?? [] { facets[name, default: [:]][entry["value"] as? String ?? ""] = entry["count"] as? Int }
        }
        self.facets = facets
        hitUIDs = (object["hits"] as? [[String: Any]] ?? []).compactMap { $0["_uid"] as? Int }
    }
}

func withSearchCluster(count: Int, name: String = #function, _ body: (SearchTestCluster) async throws -> Void) async throws {
    let server = try await ZooKeeperServer.shared()
    var generator = SeededRandomNumberGenerator(seed: 42)
    let cluster = try SearchTestCluster(zkConnect: server.connectString, corpus: Corpus(count: count, using: &generator), name: name)
    do { try await body(cluster) } catch {
        Issue.record("logs:\n\(cluster.logs())")
        await cluster.tearDown()
        throw error
    }
    await cluster.tearDown()
}
