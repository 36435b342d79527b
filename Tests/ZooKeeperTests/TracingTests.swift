import InMemoryTracing
import Testing
import Tracing
import ZooKeeper
import ZooKeeperTesting

@Suite struct TracingTests {
    /// With a tracer bound, every operation is a client span with its path and, when it fails,
    /// its error code; without one, nothing is recorded.
    @Test func operationsAreSpansWhenATracerIsActive() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            let tracer = InMemoryTracer()
            try await withTracer(tracer) {
                try await client.create(path, data: Array("x".utf8))
                _ = try await client.getData(path)
                _ = try? await client.getData(path + "/missing")
                _ = try await client.getDataAndWatch(path)
            }
            let spans = tracer.finishedSpans
            #expect(spans.map(\.operationName) == ["zookeeper.create", "zookeeper.getData", "zookeeper.getData", "zookeeper.getData"])
            #expect(spans.allSatisfy { $0.kind == .client })
            #expect(spans[1].attributes["zookeeper.path"]?.toSpanAttribute() == .string(path))
            #expect(spans[2].attributes["zookeeper.error"]?.toSpanAttribute() == .string("noNode"))
            #expect(spans[2].errors.count == 1)
            #expect(spans[3].attributes["zookeeper.watch"]?.toSpanAttribute() == .bool(true))

            _ = try await client.getData(path)  // no tracer bound: no span
            #expect(tracer.finishedSpans.count == 4)
            try await client.delete(path)
        }
    }
}
