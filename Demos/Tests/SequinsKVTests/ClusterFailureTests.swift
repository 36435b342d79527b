import Foundation
import DemoSupport
import SequinsKV
import Testing
import ZooKeeper
import ZooKeeperTesting

/// What happens to a `kv` cluster when ZooKeeper or a node fails, injected for real.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ClusterFailureTests {
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

    /// Expects ``failedRequests(_:version:records:)`` to be empty, naming the first failures.
    func expectEveryKeyAnswered(_ nodes: [KVTestNode], version: String, records: Range<Int> = 0..<100, sourceLocation: SourceLocation = #_sourceLocation) async {
        let failures = await failedRequests(nodes, version: version, records: records)
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(8).joined(separator: "; "))", sourceLocation: sourceLocation)
    }

    @Test func zooKeeperDownKeepsServingRefusesNewNodesAndCatchesUp() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        try await withKVCluster(server: server) { cluster in
            try await cluster.startNodes(3, serving: "v1")
            await server.stop()
            // Every running node keeps answering every key, locally or by proxy.
            for _ in 0..<3 {
                await expectEveryKeyAnswered(cluster.nodes, version: "v1")
                try await Task.sleep(for: .seconds(1))
            }
            // No new version while ZooKeeper is down.
            try cluster.makeVersionAvailable("v2")
            for node in cluster.nodes { try await node.hupAndWaitForRefresh() }
            try await Task.sleep(for: .seconds(1))  // were it wrong, the time to switch
            for node in cluster.nodes { #expect(await node.observe() == "v1") }
            // A new node refuses to start, saying why.
            let newcomer = try cluster.addNode()
            newcomer.sharding["shard_id"] = "\"9\""
            newcomer.zkServers = cluster.zkServers
            try newcomer.makeVersionAvailable("v1")
            try newcomer.start()
            #expect(await newcomer.waitForExit().map { $0 != 0 } == true)
            #expect(newcomer.log.contains("cannot connect to ZooKeeper"))
            // ZooKeeper returns: the nodes catch up on the next refresh.
            try await server.start()
            // A refresh needs the session back; HUP until every node has moved to v2.
            let running = Array(cluster.nodes.prefix(3))
            try await eventually("the nodes catch up to v2", timeout: .seconds(60)) {
                for node in running { node.hup() }
                try await Task.sleep(for: .seconds(1))
                for node in running where await node.observe() != "v2" { return false }
                return true
            }
            await expectEveryKeyAnswered(Array(cluster.nodes.prefix(3)), version: "v2")
        }
    }

    @Test func aNodeWhoseSessionExpiredRegistersAndAdvertisesAgain() async throws {
        let server = try await ZooKeeperServer.shared()
        let proxy = try await FaultProxy.start(targetPort: server.port)
        defer { Task { await proxy.shutdown() } }
        try await withKVCluster(server: server) { cluster in
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
            await expectEveryKeyAnswered(cluster.nodes, version: "v1")
            #expect(cluster.nodes[1].log.contains("the ZooKeeper session expired"))
            await observer.close()
        }
    }

    /// sequins' TestClusterCrashMin: replication 2; node 1 hangs for ever while loading v2 (after
    /// `part-00003`, sequins' `test.hang`), nodes 0 and 2 build it, then node 2 dies. Returns
    /// every key's answer through node 0 (status, version header).
    func crashWhileUpgrading(_ cluster: KVTestCluster, minReplication: Int) async throws -> [(status: Int, version: String?)] {
        for _ in 0..<3 { try cluster.addNode(minReplication: minReplication) }
        cluster.nodes[1].testSettings["hang"] = "{ version = \"v2\", file = \"part-00003\" }"
        try cluster.makeVersionAvailable("v1")
        try cluster.start()
        for node in cluster.nodes { try await node.waitForVersion("v1") }
        try cluster.makeVersionAvailable("v2")
        cluster.hupAll()
        // Nodes 0 and 2 build v2 and advertise it (shards 1 and 3: 4 + 3 partitions); node 1 never does.
        let observer = try ZooKeeperClient(connectString: cluster.zkServers[0])
        _ = try await observer.connect()
        let advertisements = "/\(cluster.clusterName)/v1/partitions/db/v2"
        try await eventually("nodes 0 and 2 advertise v2", timeout: .seconds(30)) {
            (try? await observer.getChildren(advertisements).names.count) == 7
        }
        if minReplication == 1 { try await cluster.nodes[0].waitForVersion("v2") }
        await cluster.nodes[2].kill9()
        // Node 2's session expires (4 s) and its three advertisements go; then, were node 0
        // wrong, the time to switch to v2.
        try await eventually("node 2's advertisements vanish", timeout: .seconds(30)) {
            (try? await observer.getChildren(advertisements).names.count) == 4
        }
        await observer.close()
        try await Task.sleep(for: .seconds(1))
        var answers: [(status: Int, version: String?)] = []
        for record in 0..<200 {
            let reply = await cluster.nodes[0].get("/db/" + SampleData.key(record))
            if let reply, reply.status == 200 { #expect(reply.body == SampleData.value(record, version: reply.version ?? "")) }
            answers.append((reply?.status ?? 0, reply?.version))
        }
        return answers
    }

    @Test func aCrashWithMinReplicationOneLosesThePartitionsOnlyTheDeadNodeHeld() async throws {
        try await withKVCluster { cluster in
            let answers = try await crashWhileUpgrading(cluster, minReplication: 1)
            let succeeded = answers.filter { $0.status == 200 }
            #expect(succeeded.allSatisfy { $0.version == "v2" }, "v2 went active with single copies")
            // Partition 2 was only on node 2 (shard 3); node 1 never finished it.
            #expect(answers.contains { $0.status >= 500 }, "some keys fail: \(answers.map(\.status))")
            #expect(!succeeded.isEmpty)
        }
    }

    @Test func aCrashWithMinReplicationTwoNeverServesAnUnreplicatedVersion() async throws {
        try await withKVCluster { cluster in
            let answers = try await crashWhileUpgrading(cluster, minReplication: 2)
            #expect(await cluster.nodes[0].observe() == "v1")
            let unexpected = answers.filter { $0.status != 200 || $0.version != "v1" }
            #expect(unexpected.isEmpty, "every key answered from v1: \(unexpected.prefix(8))")
            // Node 1 restarted without the hang and node 2 back: v2 is replicated and served.
            await cluster.nodes[1].kill9()
            cluster.nodes[1].testSettings["hang"] = nil
            try cluster.nodes[1].start()
            try cluster.nodes[2].start()
            for node in cluster.nodes { try await node.waitForVersion("v2") }
            await expectEveryKeyAnswered(cluster.nodes, version: "v2")
            // Restarted at once after kill -9, node 1 found its old registration and waited it out.
            #expect(cluster.nodes[1].log.contains("still registered by an earlier session"))
        }
    }

    /// sequins' TestClusterMin: four nodes, replication 3; node 3 dies just before v2 appears, so
    /// the survivors still count it and partitions 1, 2 and 3 can get only two copies.
    @Test(arguments: [3, 2]) func minReplicationWithANodeDown(minReplication: Int) async throws {
        try await withKVCluster(name: "minReplicationWithANodeDown\(minReplication)") { cluster in
            try await cluster.startNodes(4, serving: "v1", minReplication: minReplication, replication: 3)
            await cluster.nodes[3].kill9()
            try cluster.makeVersionAvailable("v2")
            for node in cluster.nodes.prefix(3) { node.hup() }
            if minReplication == 3 {
                // The survivors build and advertise v2 (their 12 of the 15 slots, 4 ids) ...
                let observer = try ZooKeeperClient(connectString: cluster.zkServers[0])
                _ = try await observer.connect()
                try await eventually("the survivors advertise v2", timeout: .seconds(30)) {
                    (try? await observer.getChildren("/\(cluster.clusterName)/v1/partitions/db/v2").names.count) == 12
                }
                await observer.close()
                // ... and, were they wrong, the time to switch.
                try await Task.sleep(for: .seconds(1))
                for node in cluster.nodes.prefix(3) { #expect(await node.observe() == "v1", "no upgrade without three copies") }
            } else {
                for node in cluster.nodes.prefix(3) { try await node.waitForVersion("v2") }
            }
            #expect(await cluster.nodes[3].observe() == "DOWN")
        }
    }

    @Test func aRestartedNodeReadsItsStoreBackAndASecondProcessIsRefused() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(3, serving: "v1")
            // A second process on node 0's store.
            let intruder = try cluster.addNode()
            intruder.store = cluster.nodes[0].store
            try intruder.makeVersionAvailable("v1")
            try intruder.start()
            #expect(await intruder.waitForExit().map { $0 != 0 } == true)
            #expect(intruder.log.contains("failed to acquire lock"), "\(intruder.log)")
            cluster.nodes.removeLast()
            // sequins' TestClusterRollingRestart: each node in turn goes down and comes back on
            // v1 from its own store (nothing reloaded); the others never stop answering.
            let recorders = cluster.nodes.map(ProgressionRecorder.init)
            for recorder in recorders { try await recorder.waitForFirstObservation() }
            for (node, recorder) in zip(cluster.nodes, recorders) {
                await node.stop()
                try await eventually("node \(node.index) is seen down") { recorder.progression.last == "DOWN" }
                try node.start()
                try await node.waitForVersion("v1")
                #expect(node.log.contains("mapped the version from the local store"))
            }
            try await Task.sleep(for: .milliseconds(300))
            for recorder in recorders {
                recorder.stop()
                #expect(recorder.progression == ["v1", "DOWN", "v1"])
            }
            await expectEveryKeyAnswered(cluster.nodes, version: "v1")
        }
    }

    /// A restarted node maps what its store holds after checking each file's header and page
    /// checksums: a partition file that was truncated while the node was down is refused by name,
    /// and the version is built again from the source. A page damaged while the node was down is
    /// found by the first lookup that reads it (answered 500 naming the file, never with wrong
    /// bytes) or by the check of every page that follows serving, and the partition is built
    /// again from the source and served in its place.
    @Test func aDamagedStoreIsRefusedByNameAndRebuiltFromTheSource() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(1, serving: "v1", minReplication: 1)
            let node = cluster.nodes[0]
            let versionDirectory = node.store + "/data/db/v1"
            func partitionFiles() throws -> [String] {
                try FileManager.default.contentsOfDirectory(atPath: versionDirectory).filter { $0.hasPrefix("partition-") }.sorted()
                    .map { versionDirectory + "/" + $0 }
            }
            await node.stop()
            #expect(await node.waitForExit() == 0)
            let truncated = try #require(partitionFiles().first)
            let bytes = try #require(WholeFile.read(truncated))
            try WholeFile.write(Array(bytes.dropLast(100)), to: truncated)

            try node.start()
            try await node.waitForVersion("v1")
            let refusal = node.log.split(separator: "\n").first { $0.contains("the stored version is unreadable") }
            #expect(refusal?.contains(truncated) == true, "\(refusal ?? "no refusal logged")")
            #expect(node.log.contains("built the version"))
            await expectEveryKeyAnswered([node], version: "v1", records: 0..<500)

            // One bit of a record, in the middle of the records of the largest partition.
            await node.stop()
            #expect(await node.waitForExit() == 0)
            let damaged = try #require(partitionFiles().max { (WholeFile.read($0)?.count ?? 0) < (WholeFile.read($1)?.count ?? 0) })
            var damagedBytes = try #require(WholeFile.read(damaged))
            let recordsEnd = damagedBytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self))) }
            damagedBytes[(64 + recordsEnd) / 2] ^= 0x20  // records begin after the 64-byte header
            try WholeFile.write(damagedBytes, to: damaged)

            try node.start()
            try await node.waitForVersion("v1")
            #expect(node.log.components(separatedBy: "mapped the version from the local store").count == 2, "mapped, the damage unseen")
            for record in 0..<500 {
                let reply = await node.get("/db/" + SampleData.key(record))
                if reply?.status == 200 {
                    #expect(reply?.body == SampleData.value(record, version: "v1"), "key \(record) answered wrong")
                } else {
                    #expect(reply?.status == 500 && reply?.body.contains(damaged) == true, "key \(record): \(reply.map { "\($0.status) \($0.body)" } ?? "no answer")")
                }
            }
            try await eventually("the damaged partition is built again", timeout: .seconds(30)) {
                node.log.contains("built the damaged partition again")
            }
            let found = node.log.split(separator: "\n").first { $0.contains("building the partition again from the source") }
            #expect(found?.contains(damaged) == true, "\(found ?? "the damage was not reported")")
            await expectEveryKeyAnswered([node], version: "v1", records: 0..<500)
            // The rebuilt file is whole: a restart maps it and every page matches.
            await node.stop()
            #expect(await node.waitForExit() == 0)
            let rebuilt = try PartitionFile(path: damaged)
            try rebuilt.checkAllPages()
            try node.start()
            try await node.waitForVersion("v1")
            #expect(node.log.components(separatedBy: "mapped the version from the local store").count == 3)
            await expectEveryKeyAnswered([node], version: "v1", records: 0..<500)
            try await eventually("the stored pages are checked once the node serves") { node.log.contains("checked the stored version's pages") }
        }
    }

    /// A restarted node deletes the stored versions nothing serves, as sequins does, without
    /// holding up serving for it, and logs it in sequins' words.
    @Test func aRestartedNodeClearsDefunctVersionsFromItsStore() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(1, serving: "v1", minReplication: 1)
            let node = cluster.nodes[0]
            await node.stop()
            #expect(await node.waitForExit() == 0)
            let defunct = node.store + "/data/db/v0"
            try FileManager.default.copyItem(atPath: node.store + "/data/db/v1", toPath: defunct)
            // A build a crash cut off: partition files, no manifest.
            let unfinished = node.store + "/data/db/v00"
            try FileManager.default.copyItem(atPath: node.store + "/data/db/v1", toPath: unfinished)
            try FileManager.default.removeItem(atPath: unfinished + "/.manifest")

            try node.start()
            try await node.waitForVersion("v1")
            let deadline = ContinuousClock.now + .seconds(20)
            while FileManager.default.fileExists(atPath: defunct) || FileManager.default.fileExists(atPath: unfinished), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(!FileManager.default.fileExists(atPath: defunct))
            #expect(!FileManager.default.fileExists(atPath: unfinished), "an unfinished build is deleted too")
            #expect(node.log.contains("Clearing defunct version v0 of db"))
            #expect(FileManager.default.fileExists(atPath: node.store + "/data/db/v1"))
            await expectEveryKeyAnswered([node], version: "v1", records: 0..<500)
        }
    }

    /// A stored version whose partition count differs from the source's (the version was written
    /// again under the same name) is not taken for it: it is deleted and built again.
    @Test func aStoredVersionWithAnotherPartitionCountIsBuiltAgain() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(1, serving: "v1", minReplication: 1)
            let node = cluster.nodes[0]
            await node.stop()
            #expect(await node.waitForExit() == 0)
            let manifestPath = node.store + "/data/db/v1/.manifest"
            var manifest = try JSONDecoder().decode(StoredVersionManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            manifest.numPartitions += 1
            manifest.selectedPartitions.append(manifest.numPartitions - 1)
            try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: manifestPath))

            try node.start()
            try await node.waitForVersion("v1")
            #expect(node.log.contains("partitions and the source"), "\(node.log.suffix(2000))")
            #expect(!node.log.contains("mapped the version from the local store"))
            await expectEveryKeyAnswered([node], version: "v1", records: 0..<500)
        }
    }

    /// A node whose HTTP port is taken stops (and leaves the cluster) instead of staying joined
    /// without serving.
    @Test func aNodeThatCannotBindItsPortExits() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(1, serving: "v1", minReplication: 1)
            let second = try cluster.addNode(minReplication: 1)
            second.port = cluster.nodes[0].port
            try second.makeVersionAvailable("v1")
            try second.start()
            #expect(await second.waitForExit().map { $0 != 0 } == true)
            #expect(second.log.contains("kv stopped"), "\(second.log.suffix(2000))")
        }
    }

    @Test func aBadConfigurationNamesTheKey() async throws {
        try await withKVCluster { cluster in
            let node = try cluster.addNode()
            node.sharding["replicaton"] = "3"
            try node.start()
            #expect(await node.waitForExit().map { $0 != 0 } == true)
            #expect(node.log.contains("unknown configuration key sharding.replicaton"), "\(node.log)")
        }
    }
}
