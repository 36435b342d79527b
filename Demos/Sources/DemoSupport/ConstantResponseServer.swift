import Logging
import NIOCore

/// The demos' HTTP stack (``HTTPServer``) answering every request with a constant body and no
/// work: the baseline the benchmarks compare lookups against, and a peer for the client's tests.
public enum ConstantResponseServer {
    /// Serves until the task is cancelled.
    public static func run(host: String, port: Int, body: String) async throws {
        let reply = HTTPReply(status: .ok, headers: ["Content-Type": "text/plain; charset=utf-8"], body: ByteBuffer(string: body))
        try await HTTPServer.run(host: host, port: port, logger: Logger(label: "constant")) { _, _, _ in .now(reply) }
    }
}
