import Tracing

extension ZooKeeperClient {
    /// Whether a tracer is active (bootstrapped, or bound to the task with `withTracer`):
    /// operations then run in spans. Without one, they skip the span entirely.
    static var isTracing: Bool { !(InstrumentationSystem.instrument is NoOpInstrument) }

    /// Runs `body` in a client span `zookeeper.<operation>` with the path, whether it set a watch,
    /// and the error code when it fails (swift-distributed-tracing; Curator's `TracerDriver`).
    func traced<R>(_ operation: StaticString, path: String?, watching: Bool = false, _ body: () async throws -> R) async throws -> R {
        try await withSpan("zookeeper.\(operation)", ofKind: .client) { span in
            span.attributes["db.system"] = "zookeeper"
            span.attributes["db.operation"] = "\(operation)"
            if let path { span.attributes["zookeeper.path"] = path }
            if watching { span.attributes["zookeeper.watch"] = true }
            do {
                return try await body()
            } catch let error as ZooKeeperError {
                span.attributes["zookeeper.error"] = "\(error.code)"
                throw error
            }
        }
    }
}
