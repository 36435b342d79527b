import InMemoryTracing
import Testing
import Tracing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

@Suite struct RecipeTracingTests {
    /// The spans made inside the `occurrence`th finished span named `name` (which must be there,
    /// with the recipe's `path`); every one of them is a ZooKeeper request.
    private func recipeSpan(_ name: String, path: String, in tracer: InMemoryTracer, occurrence: Int = 0) throws -> [FinishedInMemorySpan] {
        let spans = tracer.finishedSpans.filter { $0.operationName == name }
        try #require(spans.count > occurrence, "\(spans.count) spans named \(name)")
        let span = spans[occurrence]
        #expect(span.attributes["coordination.path"]?.toSpanAttribute() == .string(path))
        let children = tracer.finishedSpans.filter { $0.parentSpanID == span.spanID }
        #expect(children.allSatisfy { $0.operationName.hasPrefix("zookeeper.") }, "\(children.map(\.operationName))")
        return children
    }

    /// A lock's acquire is a span of its own, with the requests it made inside it.
    @Test(.timeLimit(.minutes(1))) func acquiringALockIsASpanAroundItsRequests() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath()
        let tracer = InMemoryTracer()
        let lease = try await withTracer(tracer) { try await DistributedLock(client: client, path: path).acquire() }
        await lease.release()
        let children = try recipeSpan("coordination.lock.acquire", path: path, in: tracer)
        #expect(!children.isEmpty, "the requests of the acquire are its children")
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

        let created = try recipeSpan("coordination.election.campaign", path: path, in: tracer, occurrence: 0)
        #expect(created.contains { $0.is("zookeeper.create", at: path) }, "the first campaign creates the election's node: \(created.map(\.operationName))")
        let watched = try recipeSpan("coordination.election.campaign", path: path, in: tracer, occurrence: 1)
        #expect(watched.contains { $0.is("zookeeper.getData", at: firstTerm.node.path) }, "the second campaign watches the leader's node: \(watched.map(\.operationName))")
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

        let children = try recipeSpan("coordination.membership.join", path: group, in: tracer)
        #expect(children.contains { $0.is("zookeeper.create", at: group + "/member-1") }, "the member's node is created inside the join: \(children.map(\.operationName))")
        await client.close()
    }
}

extension FinishedInMemorySpan {
    /// Whether this is the request `operation` on `path`.
    fileprivate func `is`(_ operation: String, at path: String) -> Bool {
        operationName == operation && attributes["zookeeper.path"]?.toSpanAttribute() == .string(path)
    }
}
