import DemoTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

/// `search` processes for the cluster tests, as Sensei's `SenseiStarter`: a shared gateway file of
/// generated documents, one directory per node (its sensei.properties, schema.json, index).
final class SearchTestCluster: DemoTestCluster<SearchTestNode>, @unchecked Sendable {
    let zkConnect: String
    let corpus: Corpus
    var gatewayPath: String { directory + "/gateway.json" }

    init(zkConnect: String, corpus: Corpus, name: String = #function) throws {
        self.zkConnect = zkConnect
        self.corpus = corpus
        try super.init(product: "search", name: name)
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

}

final class SearchTestNode: DemoTestNode, @unchecked Sendable {
    let id: Int
    var serverPort: Int
    var brokerPort: Int
    var broker: String { "127.0.0.1:\(brokerPort)" }

    /// The ZooKeeper servers this node connects to (a fault proxy, for some tests).
    var zkConnect: String
    /// `sensei.cluster.timeout`: the session timeout in milliseconds.
    var sessionTimeoutMilliseconds = 4000
    let properties: (SearchTestNode) -> String

    init(id: Int, partitions: String, cluster: SearchTestCluster) throws {
        self.id = id
        serverPort = try freeLoopbackPort()
        brokerPort = try freeLoopbackPort()
        zkConnect = cluster.zkConnect
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
        try super.init(label: "node \(id)", executable: cluster.executable, directory: cluster.directory + "/node\(id)", logName: "search.log")
        try Corpus.schemaJSON.write(toFile: directory + "/schema.json", atomically: true, encoding: .utf8)
    }

    func start() throws {
        try start(configuration: properties(self), file: "sensei.properties")
    }

    /// A request to this node's broker; the status and the body. With `json`, a POST of it; with
    /// `form`, a POST of that `application/x-www-form-urlencoded` body.
    func broker(_ path: String, json: String? = nil, form: String? = nil) async -> (status: Int, body: String)? {
        let body = json ?? form
        let headers = form != nil ? [("Content-Type", "application/x-www-form-urlencoded")] : []
        guard let reply = try? await Self.request(body == nil ? .GET : .POST, address: broker, path, headers: headers, body: body, timeout: .seconds(15))
        else { return nil }
        return (reply.status, reply.body)
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
        let reply = try await Self.request(.GET, address: "127.0.0.1:\(serverPort)", "/node/sysinfo", timeout: .seconds(10))
        return try JSONDecoder().decode(SearchBroker.NodeInfo.self, from: Data(reply.body.utf8))
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
    try await cluster.run { try await body(cluster) }
}
