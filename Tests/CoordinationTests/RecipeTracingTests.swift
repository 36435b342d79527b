import InMemoryTracing
import Testing
import Tracing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

@Suite struct RecipeTracingTests {
    /// A lock's acquire is a span of its own, with the requests it made inside it.
    @Test func acquiringALockIsASpanAroundItsRequests() async throws {
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
}
