import Foundation
import SequinsKV
import Testing
import ZooKeeper
import ZooKeeperTesting

/// sequins' `cluster_test.go` scenarios, as real `kv` processes against a real ZooKeeper.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ClusterTests {
    @Test func aSingleNodeServesTheNewestVersion() async throws {
        try await withKVCluster { cluster in
            let node = try cluster.addNode(selfAssigned: true, minReplication: 1)
            try node.makeVersionAvailable("v3")
            try node.start()
            try await node.waitForVersion("v3")
            let health = try #require(await node.get("/healthz"))
            #expect(health.status == 200)
            #expect(health.shardID == "1")
            let missing = try #require(await node.get("/db/no-such-key"))
            #expect(missing.status == 404)
            #expect(missing.version == "v3")
            let unknown = try #require(await node.get("/nodb/key"))
            #expect(unknown.status == 404)
            #expect(unknown.version == nil)
            // Headers as sequins' Go server sends them: a sniffed type for a value, none for an empty body.
            let hit = try #require(await node.get("/db/" + SampleData.key(7)))
            #expect(hit.status == 200 && hit.contentType == "text/plain; charset=utf-8" && hit.lastModified?.hasSuffix(" GMT") == true)
            #expect(missing.contentType == nil)
            // A normal SIGTERM: exit 0, and nothing logged as an error on the way.
            await node.stop()
            #expect(await node.waitForExit() == 0)
            let errors = node.log.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" critical ") }
            #expect(errors.isEmpty, "\(errors)")
            #expect(node.log.contains("stopped"))
        }
    }

    /// sequins' `WaitToConverge`: a node waits one `time_to_converge` of quiet after registering,
    /// not two (the node reports how long it waited; a second period would show as ≥ 2T).
    @Test func aNodeWaitsOneTimeToConvergeWhenTheMembersAreQuiet() async throws {
        try await withKVCluster { cluster in
            let node = try cluster.addNode(minReplication: 1)
            node.sharding["time_to_converge"] = "\"2s\""
            try node.makeVersionAvailable("v1")
            try node.start()
            try await node.waitForVersion("v1")
            let line = try #require(node.log.split(separator: "\n").first { $0.contains("the member list converged") })
            let waited = try #require(line.split(separator: " ").first { $0.hasPrefix("kv.waited_ms=") }.flatMap { Int($0.dropFirst("kv.waited_ms=".count)) })
            #expect(waited >= 2000 && waited < 4000, "\(line)")
        }
    }

    @Test func threeNodesUpgradeTogetherAndAnswerEveryKey() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(3, serving: "v1")
            let recorders = cluster.nodes.map(ProgressionRecorder.init)
            try cluster.makeVersionAvailable("v2")
            cluster.hupAll()
            for node in cluster.nodes { try await node.waitForVersion("v2") }
            try cluster.makeVersionAvailable("v3")
            cluster.hupAll()
            for node in cluster.nodes { try await node.waitForVersion("v3") }
            try await Task.sleep(for: .milliseconds(300))
            for recorder in recorders {
                recorder.stop()
                #expect(recorder.progression == ["v1", "v2", "v3"])
            }
            // Every key through every node, some of them proxied.
            var proxied = 0
            for node in cluster.nodes {
                for record in 0..<100 {
                    let reply = try #require(await node.get("/db/" + SampleData.key(record)))
                    #expect(reply.status == 200)
                    #expect(reply.body == SampleData.value(record, version: "v3"))
                    if let peer = reply.proxiedTo {
                        proxied += 1
                        #expect(peer != node.address)
                    }
                }
            }
            #expect(proxied > 0)
            // The merged status shows every node for v3 with replication 2.
            let status = try #require(await cluster.nodes[0].get("/", headers: [("Accept", "application/json")]))
            let decoded = try JSONDecoder().decode(ClusterStatus.self, from: Data(status.body.utf8))
            let v3 = try #require(decoded.dbs["db"]?.versions["v3"])
            #expect(v3.nodes.count == 3)
            #expect(v3.numPartitions == 5)
            #expect(v3.averageReplication == 2)
            #expect(v3.missingPartitions == 0)
            let html = try #require(await cluster.nodes[1].get("/"))
            #expect(html.body.contains("<h1>kv cluster status</h1>"))
        }
    }

    @Test func aDelayedUpgradeWaitsForMinimumReplication() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(3, serving: "v1")
            let recorders = cluster.nodes.map(ProgressionRecorder.init)
            try cluster.makeVersionAvailable("v2")
            cluster.nodes[0].hup()
            // Node 0 builds and advertises its part of v2 ...
            try await eventually("node 0 builds v2", timeout: .seconds(30)) {
                cluster.nodes[0].logLines(containing: "kv.version=v2", "built the version").count == 1
            }
            // ... and, alone, cannot replicate it twice: it stays on v1 (given the time to switch).
            try await Task.sleep(for: .seconds(1))
            #expect(await cluster.nodes[0].observe() == "v1", "node 0 alone cannot replicate v2 twice")
            cluster.hupAll()
            for node in cluster.nodes { try await node.waitForVersion("v2") }
            try await Task.sleep(for: .milliseconds(300))
            for recorder in recorders {
                recorder.stop()
                #expect(recorder.progression == ["v1", "v2"])
            }
        }
    }

    @Test func neverDowngrades() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(3, serving: "v3")
            try cluster.makeVersionAvailable("v2")
            for node in cluster.nodes { node.removeVersion("v3") }
            for node in cluster.nodes { try await node.hupAndWaitForRefresh() }
            try await Task.sleep(for: .seconds(1))  // were it wrong, the time to switch
            for node in cluster.nodes { #expect(await node.observe() == "v3") }
        }
    }

    /// sequins' `TestRestartingNodeWhileRemoteRefreshDisabled` and
    /// `TestNonInitialRefreshAllWhileRemoteDisabled`: with `sequins.prevent_download.<cluster>` on
    /// in the goforit file, a refresh downloads nothing, a restart serves only what the store has,
    /// a fresh node serves nothing; once the flag is off, the next refresh downloads.
    @Test func preventDownloadKeepsANodeOnWhatItHasUntilTheFlagClears() async throws {
        try await withKVCluster { cluster in
            let node = try cluster.addNode(minReplication: 1)
            let flags = node.directory + "/flags.json"
            node.settings["goforit_flag_json_path"] = "\"\(flags)\""
            let flag = "sequins.prevent_download.\(cluster.clusterName)"
            func setFlag(rate: Int) async throws {
                let before = node.logLines(containing: "read the feature flags").count
                try #"{"flags": [{"Name": "\#(flag)", "Rate": \#(rate)}], "updated": 1700000000}"#.write(toFile: flags, atomically: true, encoding: .utf8)
                try await eventually("the node reads the flag file") { node.logLines(containing: "read the feature flags").count > before }
            }
            try node.makeVersionAvailable("v1")
            try node.start()
            try await node.waitForVersion("v1")

            try await setFlag(rate: 1)
            try node.makeVersionAvailable("v2")
            try await node.hupAndWaitForRefresh()
            #expect(node.logLines(containing: "Not allowing remote refresh").count == 1)
            try await Task.sleep(for: .seconds(1))  // were it wrong, the time to switch
            #expect(await node.observe() == "v1")

            // Restarted with the flag on: what the store holds, nothing new.
            await node.stop()
            try node.start()
            try await node.waitForVersion("v1")
            #expect(node.logLines(containing: "Kicking off initial local-only refresh").count == 1)
            try await Task.sleep(for: .seconds(1))
            #expect(await node.observe() == "v1")

            // A fresh node with the flag on serves nothing, without a version header.
            let fresh = try cluster.addNode(minReplication: 1)
            fresh.settings["goforit_flag_json_path"] = "\"\(flags)\""
            try fresh.makeVersionAvailable("v2")
            try fresh.start()
            try await eventually("the fresh node serves HTTP") { await fresh.get("/healthz") != nil }
            let miss = try #require(await fresh.get("/db/" + SampleData.key(1)))
            #expect(miss.status == 404 && miss.version == nil)

            // The flag off: the next refresh downloads v2.
            try await setFlag(rate: 0)
            node.hup()
            try await node.waitForVersion("v2")
        }
    }

    @Test func aLateJoinerServesTheClusterVersionAtOnce() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(3, serving: "v3")
            let late = try cluster.addNode()
            try late.makeVersionAvailable("v3")
            late.testSettings["upgrade_delay"] = "\"0s\""
            late.settings["throttle_loads"] = "\"20ms\""
            try late.start()
            try await eventually("the late node answers") { await late.get("/healthz") != nil }
            let recorder = ProgressionRecorder(late)
            try await Task.sleep(for: .seconds(2))
            recorder.stop()
            #expect(recorder.progression.first == "v3", "\(recorder.progression)")
            #expect(!recorder.progression.contains("NONE"))
        }
    }

    @Test func shardIDsAreSelfAssignedUnderTheLock() async throws {
        try await withKVCluster { cluster in
            for _ in 0..<3 { try cluster.addNode(selfAssigned: true, minReplication: 1) }
            try cluster.makeVersionAvailable("v1")
            try cluster.start()
            var ids: [String] = []
            for node in cluster.nodes {
                try await node.waitForVersion("v1")
                ids.append(try #require(await node.get("/healthz")?.shardID))
            }
            #expect(Set(ids) == ["1", "2", "3"])
            // A freed id is taken by the next unconfigured node.
            let freed = ids.firstIndex(of: "2")!
            await cluster.nodes[freed].stop()
            let replacement = try cluster.addNode(selfAssigned: true, minReplication: 1)
            try replacement.makeVersionAvailable("v1")
            try replacement.start()
            try await replacement.waitForVersion("v1")
            #expect(await replacement.get("/healthz")?.shardID == "2")
            // A restarted node keeps the id it stored.
            let first = cluster.nodes[ids.firstIndex(of: "1")!]
            await first.stop()
            try first.start()
            try await first.waitForVersion("v1")
            #expect(await first.get("/healthz")?.shardID == "1")
        }
    }

    @Test func partitionAssignmentFollowsSequinsTable() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(5, serving: "v1", minReplication: 1, replication: 3)
            let expected: [[Int]] = [[0, 1, 3], [0, 2, 3], [0, 2, 4], [1, 2, 4], [1, 3, 4]]
            for (node, partitions) in zip(cluster.nodes, expected) {
                #expect(await node.healthPartitions(version: "v1") == partitions)
            }
            let sixth = try cluster.addNode(minReplication: 1, replication: 3)
            try sixth.makeVersionAvailable("v1")
            try sixth.start()
            try await sixth.waitForVersion("v1")
            #expect(await sixth.healthPartitions(version: "v1") == [1, 3])
            for (node, partitions) in zip(cluster.nodes, expected) {
                #expect(await node.healthPartitions(version: "v1") == partitions, "old nodes keep their selection")
            }
            try cluster.makeVersionAvailable("v2")
            cluster.hupAll()
            for node in cluster.nodes { try await node.waitForVersion("v2") }
            let v2 = await cluster.nodes.asyncMap { await $0.healthPartitions(version: "v2") ?? [] }
            #expect(v2 == [[0, 2, 4], [0, 2, 4], [0, 2, 4], [1, 3], [1, 3], [1, 3]])
        }
    }
}

extension ClusterTests {
    /// sequins' TestClusterNodeWithoutData: replication 3, min_replication 2; v2 reaches only
    /// nodes 1 and 2, which still upgrade (two copies of everything), then v3 reaches everyone.
    @Test func aNodeWithoutTheNewVersionDoesNotHoldTheOthersBack() async throws {
        try await withKVCluster { cluster in
            for _ in 0..<3 { try cluster.addNode(minReplication: 2, replication: 3) }
            for node in cluster.nodes { node.testSettings["version_remove_timeout"] = "\"5s\"" }
            try cluster.makeVersionAvailable("v1")
            try cluster.start()
            for node in cluster.nodes { try await node.waitForVersion("v1") }
            let recorders = cluster.nodes.dropFirst().map(ProgressionRecorder.init)
            for node in cluster.nodes.dropFirst() { try node.makeVersionAvailable("v2") }
            cluster.hupAll()
            for node in cluster.nodes.dropFirst() { try await node.waitForVersion("v2") }
            try cluster.makeVersionAvailable("v3")
            cluster.hupAll()
            for node in cluster.nodes { try await node.waitForVersion("v3") }
            try await Task.sleep(for: .milliseconds(300))
            for recorder in recorders {
                recorder.stop()
                #expect(recorder.progression == ["v1", "v2", "v3"])
            }
        }
    }

    /// sequins' TestClusterNodeVacation: node 0 is away while the others move to v3; when it
    /// comes back it serves v3, never its stored v2.
    @Test func aNodeBackFromVacationServesTheClusterVersion() async throws {
        try await withKVCluster { cluster in
            try await cluster.startNodes(3, serving: "v2")
            let recorders = cluster.nodes.map(ProgressionRecorder.init)
            for recorder in recorders { try await recorder.waitForFirstObservation() }
            await cluster.nodes[0].stop()
            try await eventually("node 0 is seen down") { recorders[0].progression.last == "DOWN" }
            try cluster.makeVersionAvailable("v3")
            cluster.nodes[1].hup()
            cluster.nodes[2].hup()
            for node in cluster.nodes.dropFirst() { try await node.waitForVersion("v3") }
            try cluster.nodes[0].start()
            try await cluster.nodes[0].waitForVersion("v3")
            try await Task.sleep(for: .milliseconds(300))
            for recorder in recorders { recorder.stop() }
            #expect(recorders[0].progression == ["v2", "DOWN", "v3"])
            #expect(recorders[1].progression == ["v2", "v3"])
            #expect(recorders[2].progression == ["v2", "v3"])
        }
    }

    /// sequins' TestMaxReplication (5 partitions, replication 2, max_replication 2), nodes added
    /// one at a time: the third finds every partition at the maximum and takes none; a fourth
    /// without the limit takes its round-robin share of four ids.
    @Test func maxReplicationStopsLateNodesFromOverReplicating() async throws {
        try await withKVCluster { cluster in
            var partitions: [[Int]] = []
            for index in 0..<4 {
                let node = try cluster.addNode(minReplication: 1, replication: 2)
                node.sharding["max_replication"] = index < 3 ? "2" : "0"
                try node.makeVersionAvailable("v1")
                try node.start()
                try await node.waitForVersion("v1")
                partitions.append(try #require(await node.healthPartitions(version: "v1")))
            }
            #expect(partitions == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [], [1, 3]])
        }
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var result: [T] = []
        for element in self { result.append(await transform(element)) }
        return result
    }
}
