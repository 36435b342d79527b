import Coordination
import DemoSupport
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ZooKeeper

/// The node's HTTP interface: Stardog's database, transaction, query and admin endpoints, and
/// the `/admin/replication/…` calls members make to each other, on the demos' HTTP server.
///
/// Errors are `{"code": "...", "message": "..."}` with the status of ``ReplicatedError/Code``.
public enum StardogHTTP {
    /// The largest request body (and the largest open transaction): 16 MiB.
    public static let maxBody = 16 << 20
    /// A body this small is parsed on the event loop that received it: a few triples take
    /// microseconds, less than the hop to a Dispatch thread and back.
    static let smallBody = 16 << 10
    /// What members send each other is a client body's worth of triples and its framing
    /// (``ReplicationWire/weight(of:)``).
    static let maxMemberBody = maxBody + (1 << 20)

    /// One request: its method, path, query parameters, path parameters and body.
    struct Request: Sendable {
        var method: HTTPMethod
        var path: String
        var query: [String: String]
        var parameters: [String: String]
        var body: ByteBuffer?

        func parameter(_ name: String) throws -> String {
            guard let value = parameters[name] else { throw ReplicatedError(.malformedRequest, "missing \(name)") }
            return value
        }

        /// The body as text; a client's body is at most ``StardogHTTP/maxBody``.
        func text(limit: Int = StardogHTTP.maxBody) throws -> String {
            guard let body else { return "" }
            guard body.readableBytes <= limit else { throw ReplicatedError(.bodyTooLarge, "the request body is larger than \(limit) bytes") }
            return String(buffer: body)
        }

        /// The body's bytes (none when it has no body): a binary message between members.
        var bytes: ByteBuffer { body ?? ByteBuffer() }
    }

    typealias Handler = @Sendable (Request) async throws -> HTTPReply
    /// Answers on the thread it is called on, blocking it (disk writes), or hands the request to
    /// an asynchronous handler when it cannot answer at once.
    typealias BlockingHandler = @Sendable (Request) throws -> BlockingAnswer

    /// What a ``BlockingHandler`` does with a request.
    enum BlockingAnswer: Sendable {
        /// The reply, made on the blocking thread.
        case reply(HTTPReply)
        /// The request is answered on a task by this handler instead.
        case onATask(Handler)
    }

    /// A method and a path pattern (`:name` segments are parameters), and what answers it.
    struct Route: Sendable {
        var method: HTTPMethod
        var pattern: [Substring]
        var answer: Answer

        /// Where a route's requests are answered.
        enum Answer: Sendable {
            /// On a task.
            case onATask(Handler)
            /// On a Dispatch thread (see ``Route/init(_:_:onADispatchThread:)``).
            case onADispatchThread(BlockingHandler)
        }

        init(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping Handler) {
            self.method = method
            self.pattern = pattern.split(separator: "/")
            answer = .onATask(handler)
        }

        /// A route answered on a Dispatch thread by `blocking`: the prepare and commit a
        /// coordinator waits on, in its round, go from the event loop to the thread that writes
        /// the disk and back, with no hop through Swift's shared pool either way.
        init(_ method: HTTPMethod, _ pattern: String, onADispatchThread blocking: @escaping BlockingHandler) {
            self.method = method
            self.pattern = pattern.split(separator: "/")
            answer = .onADispatchThread(blocking)
        }

        /// The parameters when `segments` match.
        func match(_ segments: [Substring]) -> [String: String]? {
            guard segments.count == pattern.count else { return nil }
            var parameters: [String: String] = [:]
            for (part, segment) in zip(pattern, segments) {
                if part.first == ":" {
                    parameters[String(part.dropFirst())] = String(segment).removingPercentEncoding ?? String(segment)
                } else if part != segment {
                    return nil
                }
            }
            return parameters
        }
    }

    /// The server's answer function for `node`: the first route that matches (constant paths are
    /// listed before the patterns that would also match them), 404 when none does.
    public static func respond(node: ReplicatedNode) -> HTTPServer.Respond {
        let routes = admin(node) + replication(node) + databases(node)
        return { head, body, eventLoop in
            let (path, query) = split(head.uri)
            let segments = path.split(separator: "/")
            for route in routes where route.method == head.method {
                guard let parameters = route.match(segments) else { continue }
                let request = Request(method: head.method, path: path, query: query, parameters: parameters, body: body)
                switch route.answer {
                case .onATask(let handler):
                    return .later(eventLoop.makeFutureWithTask { await answer { try await handler(request) } })
                case .onADispatchThread(let blocking):
                    return .later(answerOnADispatchThread(request, blocking: blocking, eventLoop: eventLoop))
                }
            }
            return .now(HTTPReply(status: .notFound))
        }
    }

    /// Answers `request` on a Dispatch thread by `blocking`, or on a task by the handler it
    /// hands the request to.
    static func answerOnADispatchThread(_ request: Request, blocking: @escaping BlockingHandler, eventLoop: any EventLoop) -> EventLoopFuture<HTTPReply> {
        let promise = eventLoop.makePromise(of: HTTPReply.self)
        DispatchQueue.global().async {
            do {
                switch try blocking(request) {
                case .reply(let reply): promise.succeed(reply)
                case .onATask(let handler): promise.completeWithTask { await answer { try await handler(request) } }
                }
            } catch {
                promise.succeed(self.error(error))
            }
        }
        return promise.futureResult
    }

    /// The path and the query parameters (percent-decoded) of a request target.
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            if query[name] == nil { query[name] = value }
        }
        return (String(uri[..<mark]), query)
    }

    // MARK: Answers

    static func text(_ body: String, status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8") -> HTTPReply {
        HTTPReply(status: status, headers: ["Content-Type": contentType], body: ByteBuffer(string: body))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok, headers extra: HTTPHeaders = [:]) -> HTTPReply {
        var headers = extra
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return HTTPReply(status: status, headers: headers, body: ByteBuffer(bytes: data))
    }

    /// A member's answer to a prepare, commit or abort (`{}`), made once: each round asks every
    /// member twice.
    static let done = text("{}", contentType: "application/json")

    static func error(_ error: any Error) -> HTTPReply {
        let replicated = ReplicatedError(answering: error)
        return json(ErrorBody(replicated), status: HTTPResponseStatus(statusCode: replicated.code.status))
    }

    /// Runs `body`, answering a thrown error as its JSON error.
    static func answer(_ body: () async throws -> HTTPReply) async -> HTTPReply {
        do { return try await body() } catch { return self.error(error) }
    }

    struct NodeList: Codable { var nodes: [String] }
    struct DatabaseList: Codable { var databases: [String] }
    struct TransactionCommitted: Codable { var database: String; var seq: Int?; var txId: String? }
    struct NodeStatus: Codable {
        var address: String
        var metadata: [String: String] = [:]
        var type = "FULL"
        var role: String
    }
    struct ClusterStatus: Codable { var nodes: [NodeStatus] }
    struct ReadOnlyState: Codable { var readonly: Bool }
    /// `GET /admin/status`: metrics named as Stardog names its own (`{"name": {…}}`), here the
    /// sizes of the commit rounds this node ran as coordinator and of the requests in which it
    /// forwarded operations to the coordinator.
    struct NodeMetrics: Encodable {
        var rounds: BatchSizes.Summary
        var forwards: BatchSizes.Summary
        init(_ node: ReplicatedNode) {
            rounds = node.coordinator.statistics.summary
            forwards = node.forwarding.batchSizes.summary
        }
        enum CodingKeys: String, CodingKey {
            case rounds = "cluster.commit.round.size"
            case forwards = "cluster.forward.batch.size"
        }
    }

    // MARK: Admin

    static func admin(_ node: ReplicatedNode) -> [Route] {
        [
            Route(.GET, "/admin/alive") { _ in text("") },
            Route(.GET, "/admin/status") { _ in json(NodeMetrics(node)) },
            Route(.GET, "/admin/healthcheck") { _ in
                await node.inGoodStanding() ? text("") : error(ReplicatedNode.notInCluster)
            },
            Route(.GET, "/admin/cluster") { _ in json(NodeList(nodes: try await node.clusterView().members.sorted())) },
            Route(.GET, "/admin/cluster/status") { _ in
                let (members, coordinator) = try await node.clusterView()
                let nodes = members.sorted { ($0 == coordinator ? 0 : 1, $0) < ($1 == coordinator ? 0 : 1, $1) }
                return json(ClusterStatus(nodes: nodes.map { NodeStatus(address: $0, role: $0 == coordinator ? "COORDINATOR" : "PARTICIPANT") }))
            },
            Route(.GET, "/admin/cluster/coordinator") { _ in
                await node.isCoordinatorInGoodStanding() ? text("") : error(ReplicatedError(.notInCluster, "this node is not the coordinator"))
            },
            Route(.GET, "/admin/cluster/readonly") { _ in json(ReadOnlyState(readonly: try await node.isReadOnly())) },
            Route(.PUT, "/admin/cluster/readonly") { _ in
                try await node.setReadOnly(true)
                return json(ReadOnlyState(readonly: true))
            },
            Route(.DELETE, "/admin/cluster/readonly") { _ in
                try await node.setReadOnly(false)
                return json(ReadOnlyState(readonly: false))
            },
            Route(.POST, "/admin/shutdownAll") { _ in json(NodeList(nodes: try await node.shutDownCluster())) },
            Route(.GET, "/admin/databases") { _ in
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                return json(DatabaseList(databases: node.store.catalog.keys.sorted()))
            },
            Route(.PUT, "/admin/databases/:db") { request in
                let name = try request.parameter("db")
                try DatabaseName.validate(name)
                _ = try await node.submit(ClusterOperation(kind: .createDatabase, database: name))
                return json(DatabaseList(databases: [name]), status: .created)
            },
            Route(.DELETE, "/admin/databases/:db") { request in
                let name = try request.parameter("db")
                try DatabaseName.validate(name)
                _ = try await node.submit(ClusterOperation(kind: .dropDatabase, database: name))
                return json(DatabaseList(databases: [name]))
            },
        ]
    }

    // MARK: Databases: transactions and reads

    static func databases(_ node: ReplicatedNode) -> [Route] {
        [
            Route(.POST, "/:db/transaction/begin") { request in
                text(try await node.beginTransaction(database: try request.parameter("db")))
            },
            Route(.POST, "/:db/transaction/commit/:tx") { request in
                let database = try request.parameter("db")
                let next = try await node.commitTransaction(database: database, transaction: try request.parameter("tx"))
                return json(TransactionCommitted(database: database, seq: next?.seq, txId: next?.txId))
            },
            Route(.POST, "/:db/transaction/rollback/:tx") { request in
                try node.rollbackTransaction(database: try request.parameter("db"), transaction: try request.parameter("tx"))
                return text("")
            },
            Route(.POST, "/:db/add") { request in try await commitOneBody(request, node, adding: true) },
            Route(.POST, "/:db/remove") { request in try await commitOneBody(request, node, adding: false) },
            Route(.GET, "/:db/size") { request in
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                return text(String(try node.store.size(of: try request.parameter("db"))))
            },
            Route(.GET, "/:db/triples") { request in
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                let database = try request.parameter("db")
                func term(_ name: String, _ role: String) throws -> RDFTerm? {
                    guard let value = request.query[name], !value.isEmpty else { return nil }
                    do { return try NTriples.parseTerm(value, role: role) } catch {
                        throw ReplicatedError(.malformedRequest, "parameter \(name): \(error)")
                    }
                }
                let (s, p, o) = (try term("s", "subject"), try term("p", "predicate"), try term("o", "object"))
                let store = node.store
                let triples = try await runOffPool { try store.triples(in: database, subject: s, predicate: p, object: o) }
                return text(NTriples.serialize(triples), contentType: "application/n-triples")
            },
            Route(.POST, "/:db/:tx/add") { request in
                try await node.change(
                    database: try request.parameter("db"), transaction: try request.parameter("tx"), adding: true, ntriples: try request.text())
                return text("")
            },
            Route(.POST, "/:db/:tx/remove") { request in
                try await node.change(
                    database: try request.parameter("db"), transaction: try request.parameter("tx"), adding: false, ntriples: try request.text())
                return text("")
            },
        ]
    }

    /// `POST /<db>/add` and `/<db>/remove`: one body as one transaction.
    static func commitOneBody(_ request: Request, _ node: ReplicatedNode, adding: Bool) async throws -> HTTPReply {
        let database = try request.parameter("db")
        let body = try request.text()
        let triples = try await runOffPool(unless: body.utf8.count <= smallBody) { NTriples.serialize(try LocalStore.parse(body)) }
        guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
        guard node.store.version(of: database) != nil else { throw LocalStore.unknown(database) }
        let operation = ClusterOperation(kind: .transaction, database: database, add: adding ? triples : "", remove: adding ? "" : triples)
        let next = try await node.submit(operation)
        return json(TransactionCommitted(database: database, seq: next?.seq, txId: next?.txId))
    }

    // MARK: Between members

    static func replication(_ node: ReplicatedNode) -> [Route] {
        [
            Route(.POST, "/admin/replication/operations") { request in
                let outcomes = await node.coordinate(try ReplicationWire.decodeOperations(request.bytes))
                return HTTPReply(status: .ok, headers: ["Content-Type": ReplicationWire.contentType], body: ReplicationWire.encode(outcomes))
            },
            Route(.POST, "/admin/replication/prepare", onADispatchThread: { request in
                let encoded = request.bytes
                let batch = try ReplicationWire.decodeBatch(encoded)
                // An earlier coordinator's undecided vote is decided from ZooKeeper first, on a task.
                guard try node.participant.prepareAtOnce(batch, encoded: encoded) else {
                    return .onATask { _ in
                        try await node.participant.prepare(batch, encoded: encoded)
                        return done
                    }
                }
                return .reply(done)
            }),
            Route(.POST, "/admin/replication/commit", onADispatchThread: { request in
                try node.participant.commitAtOnce(round: try ReplicationWire.decodeDecision(request.bytes).round)
                return .reply(done)
            }),
            Route(.POST, "/admin/replication/abort") { request in
                try await node.participant.abort(round: try ReplicationWire.decodeDecision(request.bytes).round)
                return done
            },
            Route(.GET, "/admin/replication/snapshot/:db") { request in
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                let database = try request.parameter("db")
                let store = node.store
                let (version, ntriples) = try await runOffPool { try store.snapshot(of: database) }
                let headers: HTTPHeaders = [
                    "X-Replicated-Version": String(decoding: try JSONEncoder().encode(version), as: UTF8.self),
                    "Content-Type": "application/n-triples",
                ]
                return HTTPReply(status: .ok, headers: headers, body: ByteBuffer(string: ntriples))
            },
            Route(.POST, "/admin/replication/shutdown") { _ in
                Task {  // after the answer has left
                    try? await Task.sleep(for: .milliseconds(200))
                    node.shutDown()
                }
                return text("")
            },
        ]
    }
}
