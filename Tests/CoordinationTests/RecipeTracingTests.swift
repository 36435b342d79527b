import InMemoryTracing
import Testing
import Tracing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

@Suite struct RecipeTracingTests {
    /// A lock's acquire is a span of its own, with the requests it made inside it.
    @Test(.timeLimit(.minutes(1))) func acquiringALockIsASpanAroundItsRequests() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath()
        let tracer = InMemoryTracer()
        let lease = try await withTracer(tracer) { try await DistributedLock(client: client, path: path).acquire() }
        await lease.release()
        let acquire = try #require(tracer.finishedSpans.first { $0.operationName == "coordination.lock.acquire" })
        #expect(acquire.attributes["coordination.path"]?.toSpanAttribute() == .string(path))
        let children = tracer.finishedSpans.filter { $0.parentSpanID == acquire.spanID }
        #expect(!children.isEmpty, "the requests of the acquire are its children")
        #expect(children.allSatisfy { $0.operationName.hasPrefix("zookeeper.") })
        await client.close()
    }

    /// A campaign is a span of its own, with the requests it made inside it: creating the
    /// election's node, and watching the leader before it while it waits in line.
    @Test(.timeLimit(.minutes(1))) func campaigningIsASpanAroundItsRequests() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath()
        let tracer = InMemoryTracer()
        let first = LeaderElection(client: client, path: path, participantID: "first")
        let second = LeaderElection(client: client, path: path, participantID: "second")
        let firstTerm = try await withTracer(tracer) { try await first.campaign() }
        let waiting = Task { try await withTracer(tracer) { try await second.campaign() } }
        try await eventually("the second participant waits in line") { try await first.participants().count == 2 }
        await firstTerm.resign()
        let secondTerm = try await waiting.value
        await secondTerm.resign()

        let campaigns = tracer.finishedSpans.filter { $0.operationName == "coordination.election.campaign" }
        try #require(campaigns.count == 2)
        for campaign in campaigns {
            #expect(campaign.attributes["coordination.path"]?.toSpanAttribute() == .string(path))
        }
        let (leading, waited) = (campaigns[0], campaigns[1])
        let created = tracer.finishedSpans.filter { $0.parentSpanID == leading.spanID }
        #expect(created.contains { $0.operationName == "zookeeper.create" && $0.attributes["zookeeper.path"]?.toSpanAttribute() == .string(path) },
                "the first campaign creates the election's node: \(created.map(\.operationName))")
        let watched = tracer.finishedSpans.filter { $0.parentSpanID == waited.spanID }
        #expect(watched.contains { $0.operationName == "zookeeper.getData" && $0.attributes["zookeeper.path"]?.toSpanAttribute() == .string(firstTerm.node.path) },
                "the second campaign watches the leader's node: \(watched.map(\.operationName))")
        for child in created + watched {
            #expect(child.operationName.hasPrefix("zookeeper."))
        }
        await client.close()
    }

    /// Joining a group is a span of its own, with the create of the member's node inside it.
    @Test(.timeLimit(.minutes(1))) func joiningAGroupIsASpanAroundItsRequests() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let group = uniqueTestPath()
        let tracer = InMemoryTracer()
        let watcher = MembershipWatcher(client: client, group: group)
        try await withTracer(tracer) { try await watcher.join(memberID: "member-1", payload: Array("here".utf8)) }
        try await watcher.leave()

        let join = try #require(tracer.finishedSpans.first { $0.operationName == "coordination.membership.join" })
        #expect(join.attributes["coordination.path"]?.toSpanAttribute() == .string(group))
        let children = tracer.finishedSpans.filter { $0.parentSpanID == join.spanID }
        #expect(children.contains { $0.operationName == "zookeeper.create" && $0.attributes["zookeeper.path"]?.toSpanAttribute() == .string(group + "/member-1") },
                "the member's node is created inside the join: \(children.map(\.operationName))")
        #expect(children.allSatisfy { $0.operationName.hasPrefix("zookeeper.") })
        await client.close()
    }
}
