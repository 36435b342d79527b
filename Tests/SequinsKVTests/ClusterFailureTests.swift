import Foundation
import SequinsKV
import Testing
import ZooKeeper
import ZooKeeperTesting

/// What happens to a `kv` cluster when ZooKeeper or a node fails, injected for real.
@Suite(.serialized) struct ClusterFailureTests {
    func withCluster(
        server: ZooKeeperServer? = nil, name: String = #function, _ body: (KVTestCluster) async throws -> Void
    ) async throws {
        let shared = try await ZooKeeperServer.shared()
        let server = server ?? shared
        let cluster = try KVTestCluster(zkServers: [server.connectString], name: name)
        defer { cluster.tearDown() }
        do { try await body(cluster) } catch {
            Issue.record("logs:\n\(cluster.logs())")
            throw error
        }
    }

    /// Asks every node for every key `rounds` times; returns the failures.
    func failedRequests(_ nodes: [KVTestNode], version: String, records: Range<Int> = 0..<100) async -> [String] {
        var failures: [String] = []
        for node in nodes {
            for record in records {
                let reply = await node.get("/db/" + SampleData.key(record))
                if reply?.status != 200 || reply?.body != SampleData.value(record, version: version) {
                    failures.append("node \(node.index) key \(record): \(reply.map { "\($0.status) \($0.body)" } ?? "no answer")")
                }
            }
        }
        return failures
    }

    @Test func zooKeeperDownKeepsServingRefusesNewNodesAndCatchesUp() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        try await withCluster(server: server) { cluster in
            for _ in 0..<3 { try cluster.addNode() }
            try cluster.makeVersionAvailable("v1")
            try cluster.start()
            for node in cluster.nodes { try await node.waitForVersion("v1") }
            await server.stop()
            // Every running node keeps answering every key, locally or by proxy.
            for _ in 0..<3 {
                #expect(await failedRequests(cluster.nodes, version: "v1") == [])
                try await Task.sleep(for: .seconds(1))
            }
            // No new version while ZooKeeper is down.
            try cluster.makeVersionAvailable("v2")
            cluster.hupAll()
            try await Task.sleep(for: .seconds(2))
            for node in cluster.nodes { #expect(await node.observe() == "v1") }
            // A new node refuses to start, saying why.
            let newcomer = try cluster.addNode()
            newcomer.sharding["shard_id"] = "\"9\""
            newcomer.zkServers = cluster.zkServers
            try newcomer.makeVersionAvailable("v1")
            try newcomer.start()
            try await eventually("the new node exits", timeout: .seconds(30)) { newcomer.exitStatus != nil }
            #expect(newcomer.exitStatus != 0)
            #expect(newcomer.log.contains("cannot connect to ZooKeeper"))
            // ZooKeeper returns: the nodes catch up on the next refresh.
            try await server.start()
            try await Task.sleep(for: .seconds(2))
            for node in cluster.nodes.prefix(3) { node.hup() }
            for node in cluster.nodes.prefix(3) { try await node.waitForVersion("v2") }
            #expect(await failedRequests(Array(cluster.nodes.prefix(3)), version: "v2") == [])
        }
    }

    @Test func aNodeWhoseSessionExpiredRegistersAndAdvertisesAgain() async throws {
        let server = try await ZooKeeperServer.shared()
        let proxy = try await FaultProxy.start(targetPort: server.port)
        defer { Task { await proxy.shutdown() } }
        try await withCluster(server: server) { cluster in
            for _ in 0..<2 { try cluster.addNode() }
            cluster.nodes[1].zkServers = [proxy.connectString]
            try cluster.makeVersionAvailable("v1")
            try cluster.start()
            for node in cluster.nodes { try await node.waitForVersion("v1") }
            let observer = try ZooKeeperClient(connectString: server.connectString)
            _ = try await observer.connect()
            let nodesPath = "/\(cluster.clusterName)/v1/nodes"
            let advertisements = "/\(cluster.clusterName)/v1/partitions/db/v1"
            let before = try await observer.getChildren(advertisements).names.sorted()
            // Silence node 1's connection for longer than its session timeout (4 s).
            proxy.blackhole()
            try await eventually("node 1's session expires", timeout: .seconds(30)) {
                try await observer.getChildren(nodesPath).names.count == 1
            }
            // Node 0 still answers every key (node 1 still answers locally too).
            proxy.restore()
            try await eventually("node 1 registers again", timeout: .seconds(40)) {
                try await observer.getChildren(nodesPath).names.count == 2
            }
            try await eventually("node 1 advertises again", timeout: .seconds(30)) {
                try await observer.getChildren(advertisements).names.sorted() == before
            }
            #expect(await failedRequests(cluster.nodes, version: "v1") == [])
            #expect(cluster.nodes[1].log.contains("the ZooKeeper session expired"))
            await observer.close()
        }
    }

    @Test func aCrashWithMinReplicationTwoNeverServesAnUnreplicatedVersion() async throws {
        try await withCluster { cluster in
            for _ in 0..<3 { try cluster.addNode(minReplication: 2) }
            // Node 1 hangs while loading v2 (sequins' test.hang), so v2 never gets two copies of
            // node 1's partitions while node 2 is down.
            cluster.nodes[1].testSettings["hang"] = "{ version = \"v2\", file = \"part-00003\" }"
            try cluster.makeVersionAvailable("v1")
            try cluster.start()
            for node in cluster.nodes { try await node.waitForVersion("v1") }
            try cluster.makeVersionAvailable("v2")
            cluster.hupAll()
            try await Task.sleep(for: .seconds(3))
            cluster.nodes[2].kill9()
            try await Task.sleep(for: .seconds(6))
            // Every key through node 0: all v1, none failing.
            #expect(await failedRequests([cluster.nodes[0]], version: "v1", records: 0..<200) == [])
        }
    }

    @Test func aRestartedNodeReadsItsStoreBackAndASecondProcessIsRefused() async throws {
        try await withCluster { cluster in
            for _ in 0..<2 { try cluster.addNode() }
            try cluster.makeVersionAvailable("v1")
            try cluster.start()
            for node in cluster.nodes { try await node.waitForVersion("v1") }
            // A second process on node 0's store.
            let intruder = try cluster.addNode()
            intruder.settings["local_store"] = nil
            try intruder.makeVersionAvailable("v1")
            let configuration = intruder.configurationText.replacingOccurrences(of: intruder.store, with: cluster.nodes[0].store)
            try configuration.write(toFile: intruder.directory + "/sequins.conf", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: KVTestCluster.binary)
            process.arguments = ["--config", intruder.directory + "/sequins.conf"]
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus != 0)
            #expect(output.contains("failed to acquire lock"), "\(output)")
            cluster.nodes.removeLast()
            // Rolling restart: each node comes back on v1 from its own store, nothing reloaded.
            for node in cluster.nodes {
                node.stop()
                try node.start()
                try await node.waitForVersion("v1")
                #expect(node.log.contains("read the version back from the local store"))
            }
            #expect(await failedRequests(cluster.nodes, version: "v1") == [])
        }
    }

    @Test func aBadConfigurationNamesTheKey() async throws {
        try await withCluster { cluster in
            let node = try cluster.addNode()
            node.sharding["replicaton"] = "3"
            try node.start()
            try await eventually("the node exits", timeout: .seconds(20)) { node.exitStatus != nil }
            #expect(node.exitStatus != 0)
            #expect(node.log.contains("unknown configuration key sharding.replicaton"), "\(node.log)")
        }
    }
}
