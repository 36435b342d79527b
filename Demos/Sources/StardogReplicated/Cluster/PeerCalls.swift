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
        var body: Data
    }

    func call(_ method: HTTPMethod, _ address: String, _ path: String, body: Data? = nil, timeout: Duration) async throws -> Reply {
        let answer = try await client.send(peer: address, method: method, path: path, body: body.map { ByteBuffer(bytes: $0) }, timeout: timeout)
        return Reply(status: answer.status, headers: answer.headers, body: Data(buffer: answer.body))
    }

    /// Calls and decodes a 200 reply as `T`; any other status becomes the ``ReplicatedError`` in
    /// its body (or a generic one).
    func json<T: Decodable>(_ type: T.Type, _ method: HTTPMethod, _ address: String, _ path: String, body: Data? = nil, timeout: Duration) async throws -> T {
        let reply = try await call(method, address, path, body: body, timeout: timeout)
        guard reply.status == 200 else { throw Self.error(from: reply, peer: address) }
        return try JSONDecoder().decode(T.self, from: reply.body)
    }

    static func error(from reply: Reply, peer: String) -> ReplicatedError {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: reply.body), let error = body.replicatedError { return error }
        return ReplicatedError(.transactionAborted, "\(peer) answered \(reply.status): \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
    }
}

/// The JSON body of every error answer: `{"code": "...", "message": "..."}`.
public struct ErrorBody: Codable, Sendable {
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

/// The operations a member forwards to the coordinator together: `{"operations": [...]}`.
struct ForwardedOperations: Codable, Sendable {
    var operations: [ClusterOperation]
}

/// The coordinator's answer to forwarded operations, one outcome each, in their order.
struct ForwardedOutcomes: Codable, Sendable {
    var outcomes: [OperationOutcome]
}

/// What became of one operation: `{"next": {"seq":…,"txId":…}}` (no `next`: a dropped
/// database), or `{"error": {"code":…,"message":…}}`.
struct OperationOutcome: Codable, Sendable {
    var next: DatabaseVersion?
    var error: ErrorBody?

    /// The outcome as the forwarding member's caller sees it.
    var result: Result<DatabaseVersion?, any Error> {
        guard let error else { return .success(next) }
        return .failure(error.replicatedError ?? ReplicatedError(.transactionAborted, error.message))
    }
}

/// An empty JSON reply.
struct Done: Codable, Sendable {}
