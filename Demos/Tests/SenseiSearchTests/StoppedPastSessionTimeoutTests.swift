import Foundation
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import SenseiSearch

/// A `search` node stopped (SIGSTOP) until ZooKeeper expires its session, then continued; after
/// each time, the other node moves to another port, which its broker must learn from ZooKeeper.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StoppedPastSessionTimeoutTests {
    static let documents = 300

    @Test func aNodeStoppedPastItsSessionTimeoutRegistersItsPartitionsAgainEveryTime() async throws {
        try await withSearchCluster(count: Self.documents) { cluster in
            try cluster.writeGateway()
            // Node 2 alone serves partition 2: while it is away, no broker counts every document.
            for (id, partitions) in [(1, "0,1"), (2, "1,2")] {
                let node = try cluster.addNode(id: id, partitions: partitions)
                node.sessionTimeoutMilliseconds = 1000
                try node.start()
            }
            let observer = try ZooKeeperClient(connectString: cluster.zkConnect)
            try await observer.connect()
            let group = "/" + cluster.clusterName
            /// Node 2's members: member name → (shard, owning session).
            func membersOfNode2() async throws -> [String: (shard: Int, owner: Int64)] {
                var found: [String: (Int, Int64)] = [:]
                guard let names = try? await observer.getChildren(group).names else { return [:] }
                for name in names {
                    guard let node = try? await observer.getData(group + "/" + name),
                        let endpoint = try? JSONDecoder().decode(SearchEndpoint.self, from: Data(node.bytes)), endpoint.nodeId == 2
                    else { continue }
                    found[name] = (endpoint.shard, node.stat.ephemeralOwner)
                }
                return found
            }
            func everyBrokerCountsEveryDocument() async -> Bool {
                for node in cluster.nodes {
                    guard let reply = try? await node.search("{}"), reply.numhits == Self.documents, reply.errors.isEmpty else { return false }
                }
                return true
            }
            try await eventually("both brokers count every document", timeout: .seconds(60)) {
                guard try await membersOfNode2().count == 2 else { return false }
                return await everyBrokerCountsEveryDocument()
            }

            let stopped = cluster.nodes[1]
            for round in 1...20 {
                let before = try await membersOfNode2()
                let expired = try await stopped.child.pauseUntilSessionExpires(ephemeral: group + "/" + before.keys.sorted()[0], observer: observer)
                try await eventually("round \(round): node 2 publishes partitions 1 and 2 again, once each, on a new session\n\(cluster.logs())") {
                    let members = try await membersOfNode2()
                    return members.values.map(\.shard).sorted() == [1, 2] && members.values.allSatisfy { $0.owner != expired }
                }
                // Node 1 comes back on another port: node 2's broker must follow the group after its
                // expiry to reach partition 0 there (a stream that ended would keep the old port).
                let other = cluster.nodes[0]
                await other.stop()
                other.serverPort = try freeLoopbackPort()
                try other.start()
                try await eventually("round \(round): both brokers count every document", timeout: .seconds(60)) {
                    await everyBrokerCountsEveryDocument()
                }
                #expect(stopped.isRunning, "round \(round): node 2 exited\n\(stopped.log.suffix(3000))")
            }
            await observer.close()
        }
    }
}
