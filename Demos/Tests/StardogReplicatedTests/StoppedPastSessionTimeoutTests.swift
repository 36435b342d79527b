import Foundation
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import StardogReplicated

/// `replicated` nodes stopped (SIGSTOP) until ZooKeeper expires their session, then continued.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StoppedPastSessionTimeoutTests {
    /// One-second sessions: a round is about one session timeout of pause plus a rejoin.
    static let settings = ["pack.session.timeout": "1s"]

    @Test func aNodeStoppedPastItsSessionTimeoutRejoinsEveryTime() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(2, settings: Self.settings)
            try await cluster.startAll()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)
            let zooKeeper = try await cluster.zooKeeper()
            defer { Task { await zooKeeper.close() } }
            var acknowledged: Set<String> = []
            for round in 1...20 {
                // Alternately each node: the one stopped is the coordinator half of the time.
                let stopped = nodes[round % 2]
                let member = cluster.layout.member(stopped.address)
                let expired = try await stopped.child.pauseUntilSessionExpires(ephemeral: member, observer: zooKeeper)
                try await eventually("round \(round): node \(stopped.index) is a member again\n\(cluster.logs())", timeout: .seconds(60)) {
                    guard let stat = try await zooKeeper.exists(member), stat.ephemeralOwner != expired else { return false }
                    return await stopped.isHealthy
                }
                #expect(stopped.isRunning, "round \(round): node \(stopped.index) exited\n\(stopped.log.suffix(3000))")
                // A write through the node that was stopped reaches both.
                try await eventually("round \(round): a write through node \(stopped.index) is acknowledged") {
                    try await stopped.add(triple("round-\(round)")).status == 200
                }
                acknowledged.insert(triple("round-\(round)"))
                for node in nodes { #expect(await node.triples() == acknowledged, "round \(round), node \(node.index)") }
            }
            for node in nodes { #expect(node.logLines(containing: "replicated stopped").isEmpty, "\(node.log.suffix(3000))") }
        }
    }

    @Test func aWriteForwardedToAStoppedCoordinatorFailsAsOutcomeUnknownOnceASuccessorIsElected() async throws {
        // Commits may take 10 s: a forward that waited out 4 × that would outlast the request's 20 s.
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3, settings: Self.settings.merging(["pack.node.commit.timeout": "10s"]) { $1 })
            try await cluster.startAll()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)
            #expect(try await nodes[1].add(triple("before")).status == 200)
            #expect(await cluster.coordinators().map(\.index) == [1])

            nodes[0].pause()
            let reply = try await nodes[1].add(triple("forwarded"))
            #expect(reply.status == 503, "\(reply.body)")
            #expect(reply.body.contains("OutcomeUnknown") && reply.body.contains("was elected meanwhile"), "\(reply.body)")
            nodes[0].resume()

            // Whatever became of it, every node ends with the same triples, and writes work.
            for node in nodes { try await node.waitUntilHealthy() }
            try await eventually("a write after the resume is acknowledged") { try await nodes[0].add(triple("after")).status == 200 }
            let first = await nodes[0].triples()
            #expect(first?.isSuperset(of: [triple("before"), triple("after")]) == true, "\(String(describing: first))")
            for node in nodes[1...] { #expect(await node.triples() == first, "node \(node.index)") }
        }
    }
}
