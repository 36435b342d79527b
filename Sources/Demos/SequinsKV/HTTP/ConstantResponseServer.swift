import Hummingbird
import NIOCore

/// The same HTTP stack as ``KVNode`` answering every request with a constant body and no work:
/// the baseline the benchmarks compare key lookups against.
public enum ConstantResponseServer {
    /// Serves until the task is cancelled.
    public static func run(host: String, port: Int, body: String) async throws {
        let buffer = ByteBuffer(string: body)
        let responder = CallbackResponder<BasicRequestContext> { _, _ in
            Response(status: .ok, body: .init(byteBuffer: buffer))
        }
        let application = Application(responder: responder, configuration: .init(address: .hostname(host, port: port), serverName: "kv"))
        try await application.runService(gracefulShutdownSignals: [])
    }
}
