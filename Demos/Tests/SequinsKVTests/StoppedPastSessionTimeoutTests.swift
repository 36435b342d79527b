import Foundation
import SequinsKV
import Testing
import ZooKeeper
import ZooKeeperTesting

/// A `kv` node stopped (SIGSTOP) until ZooKeeper expires its session, then continued; after each
/// time, its peer moves to another port, which the node must learn from ZooKeeper.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StoppedPastSessionTimeoutTests {
    @Test func aNodeStoppedPastItsSessionTimeoutRegistersAndAdvertisesAgainEveryTime() async throws {
        try await withKVCluster { cluster in
            // Two nodes, each holding half the partitions: every other key is proxied.
            for _ in 0..<2 {
                let node = try cluster.addNode(minReplication: 1, replication: 1)
                node.zkSessionTimeout = "1s"
                node.testSettings["flap_threshold"] = "0"  // sequins would stop after more than five lost connections
            }
            try cluster.makeVersionAvailable("v1")
            try cluster.start()
            for node in cluster.nodes { try await node.waitForVersion("v1") }

            let observer = try ZooKeeperClient(connectString: cluster.zkServers[0])
            try await observer.connect()
            let root = "/\(cluster.clusterName)/v1"
            let stopped = cluster.nodes[1]
            let member = "\(root)/nodes/2@\(stopped.address)"
            let advertisements = "\(root)/partitions/db/v1"
            func advertised(by address: String) async throws -> [String: Int64] {
                var owners: [String: Int64] = [:]
                for name in try await observer.getChildren(advertisements).names where name.hasSuffix("@" + address) {
                    owners[name] = try await observer.exists("\(advertisements)/\(name)")?.ephemeralOwner
                }
                return owners
            }
            let partitions = Set(try await advertised(by: stopped.address).keys)
            #expect(!partitions.isEmpty)

            for round in 1...20 {
                let expired = try await stopped.child.pauseUntilSessionExpires(ephemeral: member, observer: observer)
                try await eventually("round \(round): node 2 is registered and advertises its partitions again\n\(cluster.logs())") {
                    guard let stat = try await observer.exists(member), stat.ephemeralOwner != expired else { return false }
                    let owners = try await advertised(by: stopped.address)
                    return Set(owners.keys) == partitions && owners.values.allSatisfy { $0 == stat.ephemeralOwner }
                }
                // Node 1 comes back on another port: node 2 must follow its peers and the version's
                // holders after its expiry to proxy there (a stream that ended would keep the old port).
                let other = cluster.nodes[0]
                await other.stop()
                other.port = try freeLoopbackPort()
                try other.start()
                try await other.waitForVersion("v1")
                // Both nodes answer every key: node 1 finds node 2's partitions, node 2 node 1's.
                try await eventually("round \(round): every key answers through both nodes") {
                    for node in cluster.nodes {
                        for record in 0..<40 {
                            let reply = await node.get("/db/" + SampleData.key(record))
                            if reply?.status != 200 || reply?.body != SampleData.value(record, version: "v1") { return false }
                        }
                    }
                    return true
                }
                #expect(stopped.isRunning, "round \(round): node 2 exited\n\(stopped.log.suffix(3000))")
            }
            await observer.close()
        }
    }
}
