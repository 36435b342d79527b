import Testing
import ZooKeeper
import ZooKeeperTesting
@testable import Coordination

@Suite struct VersionGateTests {
    /// A gate with sequins' layout under `root`.
    static func gate(_ client: ZooKeeperClient, _ root: String, _ address: String, partitions: Int = 4) -> VersionGate {
        VersionGate(client: client, versionPath: "\(root)/partitions/db/20261121", partitionCount: partitions, holder: address)
    }

    /// Returns whether `awaitReady` finished within `limit` (it is cancelled otherwise); an error
    /// from `awaitReady` is thrown, not taken for "not ready".
    static func readyWithin(_ gate: VersionGate, minReplication: Int, _ limit: Duration) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await gate.awaitReady(minReplication: minReplication)
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
    }

    @Test func opensWhenEveryPartitionHasEnoughHoldersAndLatches() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let gateA = Self.gate(a, root, "a:1")
        let gateB = Self.gate(b, root, "b:1")
        let waiting = Task { try await gateA.awaitReady(minReplication: 2) }
        try await gateA.advertise([0, 1, 2])
        try await gateB.advertise([1, 2, 3])
        #expect(!gateA.isReady)
        #expect(try await gateA.remoteHolders() == [1: 1, 2: 1, 3: 1], "what others hold, not counting a:1")
        try await gateB.advertise([0])
        try await gateA.advertise([3])
        let replication = try await waiting.value
        #expect(replication.counts == [2, 2, 2, 2])
        #expect(gateA.isReady)
        // Latched: a holder leaving does not close it again.
        try await gateB.unadvertiseAll()
        #expect(try await gateA.awaitReady(minReplication: 2).counts == [1, 1, 1, 1])
        // The latch is for what it opened at: a wait for more holders waits for them.
        let more = Task { try await gateA.awaitReady(minReplication: 3) }
        try await Task.sleep(for: .milliseconds(300))
        more.cancel()
        await #expect(throws: CancellationError.self, "still waiting when cancelled") { try await more.value }
        await a.close()
        await b.close()
    }

    @Test func aNodeKilledBeforeTheGateKeepsItClosed() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let doomed = try await connectedTestClient(server.connectString)
        try await Self.gate(a, root, "a:1").advertise([0, 1])
        try await Self.gate(doomed, root, "d:1").advertise([2])
        await doomed.close()  // dies before partition 3 is loaded anywhere, and takes 2 with it
        let gate = Self.gate(a, root, "a:1")
        #expect(try await Self.readyWithin(gate, minReplication: 1, .milliseconds(800)) == false)
        #expect(try await gate.currentReplication().missing(minReplication: 1) == [2, 3])
        try await gate.advertise([2, 3])  // a replacement loads the rest
        #expect(try await Self.readyWithin(gate, minReplication: 1, .seconds(10)))
        await a.close()
    }

    /// sequins' warning: with min_replication == replication, one node down means never ready.
    @Test func minEqualToReplicationWithOneNodeDownNeverOpens() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let assigner = StaticPartitionAssigner(partitionCount: 4, replication: 2)
        let ids = ["1", "2", "3"]
        var clients: [ZooKeeperClient] = []
        for id in ids.dropLast() {  // node "3" is down
            let client = try await connectedTestClient(server.connectString)
            clients.append(client)
            try await Self.gate(client, root, "node\(id):1").advertise(assigner.partitions(for: id, members: ids))
        }
        let gate = Self.gate(clients[0], root, "node1:1")
        #expect(try await Self.readyWithin(gate, minReplication: 2, .seconds(1)) == false)
        #expect(try await Self.readyWithin(gate, minReplication: 1, .seconds(5)))
        for client in clients { await client.close() }
    }

    @Test func advertisementsAreRepublishedAfterSessionExpiry() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let observer = try await connectedTestClient(server.connectString)
        let gate = Self.gate(client, root, "a:1")
        try await gate.advertise([0, 1, 2, 3])
        try await client.expireSessionForTesting()
        try await eventually("the advertisements are back on the new session") {
            let names = try await observer.getChildren(gate.versionPath).names
            guard names.count == 4, let session = client.sessionCredentials?.sessionID else { return false }
            for name in names where try await observer.exists("\(gate.versionPath)/\(name)")?.ephemeralOwner != session { return false }
            return true
        }
        try await gate.unadvertiseAll()
        #expect(try await observer.getChildren(gate.versionPath).names.isEmpty)
        await client.close()
        await observer.close()
    }

    /// 30 simulated nodes (sharing 3 sessions), each advertising what the assigner gives it.
    @Test func thirtySimulatedNodesReachTheGate() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let assigner = StaticPartitionAssigner(partitionCount: 50, replication: 3)
        let ids = (1...30).map(String.init)
        var clients: [ZooKeeperClient] = []
        for _ in 0..<3 { clients.append(try await connectedTestClient(server.connectString)) }
        let watcher = Self.gate(clients[0], root, "watcher:0", partitions: 50)
        let waiting = Task { try await watcher.awaitReady(minReplication: 3) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, id) in ids.enumerated() {
                let client = clients[index % 3]
                group.addTask {
                    try await Self.gate(client, root, "node\(id):9599", partitions: 50).advertise(assigner.partitions(for: id, members: ids))
                }
            }
            try await group.waitForAll()
        }
        let replication = try await waiting.value
        #expect(replication.counts == Array(repeating: 3, count: 50))
        for client in clients { await client.close() }
    }

    @Test func cleanupRemovesOnlyOldEmptyPersistentVersions() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let held = Self.gate(client, root, "a:1")
        try await held.advertise([0])
        try await client.createPath("\(root)/partitions/db/old-empty")
        try await client.createPath("\(root)/partitions/other/old-empty")
        // Nothing is old enough under the default one-hour guard.
        #expect(try await VersionGate.removeEmptyVersions(client: client, under: "\(root)/partitions").isEmpty)
        try await Task.sleep(for: .milliseconds(50))
        let removed = try await VersionGate.removeEmptyVersions(client: client, under: "\(root)/partitions", olderThan: .milliseconds(1))
        #expect(Set(removed) == ["\(root)/partitions/db/old-empty", "\(root)/partitions/other/old-empty", "\(root)/partitions/other"])
        #expect(try await client.exists(held.versionPath) != nil, "a version with advertisements stays")
        #expect(try await client.getChildren(held.versionPath).names.count == 1, "ephemerals are never touched")
        await client.close()
    }
}
