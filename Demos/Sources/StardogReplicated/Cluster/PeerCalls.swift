import DemoSupport
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The HTTP calls members make to each other (`/admin/replication/…`): forwarding an operation
/// to the coordinator, prepare/commit/abort, copying a database, shutting down. Kept-alive
/// connections of the demos' peer client.
struct PeerCalls: Sendable {
    let client: PeerClient

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    func call(
        _ method: HTTPMethod, _ address: String, _ path: String, body: ByteBuffer? = nil, contentType: String = "application/json", timeout: Duration
    ) async throws -> Reply {
        let headers: HTTPHeaders = body == nil ? [:] : ["Content-Type": contentType]
        let answer = try await client.send(peer: address, method: method, path: path, body: body, extraHeaders: headers, timeout: timeout)
        return Reply(status: answer.status, headers: answer.headers, body: answer.body)
    }

    /// Calls and checks for a 200 reply, leaving its body unread (a member's `{}` to a prepare,
    /// commit or abort); any other status becomes the ``ReplicatedError`` in its body (or a
    /// generic one).
    func expectingSuccess(
        _ method: HTTPMethod, _ address: String, _ path: String, body: ByteBuffer? = nil, contentType: String = "application/json",
        timeout: Duration
    ) async throws {
        try await decoding(method, address, path, body: body, contentType: contentType, timeout: timeout) { _ in }
    }

    /// Calls and reads a 200 reply with `decode` (a ``ReplicationWire`` form); any other status
    /// becomes the ``ReplicatedError`` in its body (or a generic one).
    func decoding<T>(
        _ method: HTTPMethod, _ address: String, _ path: String, body: ByteBuffer?, contentType: String, timeout: Duration,
        _ decode: (ByteBuffer) throws -> T
    ) async throws -> T {
        let reply = try await call(method, address, path, body: body, contentType: contentType, timeout: timeout)
        guard reply.status == 200 else { throw Self.error(from: reply, peer: address) }
        return try decode(reply.body)
    }

    static func error(from reply: Reply, peer: String) -> ReplicatedError {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: reply.body), let error = body.replicatedError { return error }
        return ReplicatedError(.transactionAborted, "\(peer) answered \(reply.status): \(String(buffer: reply.body.getSlice(at: reply.body.readerIndex, length: min(200, reply.body.readableBytes))!))")
    }
}

/// The JSON body of every error answer: `{"code": "...", "message": "..."}`.
public struct ErrorBody: Codable, Sendable, Hashable {
    public var code: String
    public var message: String
}

extension ErrorBody {
    init(_ error: ReplicatedError) {
        self.init(code: error.code.name, message: error.message)
    }

    /// The error this body names (nil: a code this node does not know).
    var replicatedError: ReplicatedError? {
        ReplicatedError.Code.named(code).map { ReplicatedError($0, message) }
    }
}

/// What became of one operation a member forwarded to the coordinator (``ReplicationWire``): its
/// database's new version (none: a dropped database), or the error it failed with.
struct OperationOutcome: Sendable, Hashable {
    var next: DatabaseVersion?
    var error: ErrorBody?

    /// The outcome as the forwarding member's caller sees it.
    var result: Result<DatabaseVersion?, any Error> {
        guard let error else { return .success(next) }
        return .failure(error.replicatedError ?? ReplicatedError(.transactionAborted, error.message))
    }
}
