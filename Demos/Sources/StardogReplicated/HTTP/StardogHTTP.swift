import Coordination
import DemoSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ZooKeeper

/// The node's HTTP interface: Stardog's database, transaction, query and admin endpoints, and
/// the `/admin/replication/…` calls members make to each other.
///
/// Errors are `{"code": "...", "message": "..."}` with the status of ``ReplicatedError/Code``.
public enum StardogHTTP {
    /// The largest request body (and the largest open transaction): 16 MiB.
    public static let maxBody = 16 << 20

    static func text(_ body: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ error: any Error) -> Response {
        let replicated: ReplicatedError
        switch error {
        case let error as ReplicatedError: replicated = error
        case is ZooKeeperError, is CoordinationError: replicated = ReplicatedError(.clusterUnavailable, "ZooKeeper: \(error)")
        default: replicated = ReplicatedError(.storage, "\(error)")
        }
        return json(ErrorBody(code: replicated.code.name, message: replicated.message), status: .init(code: replicated.code.status))
    }

    /// Runs `body`, answering a thrown error as its JSON error.
    static func answer(_ body: () async throws -> Response) async -> Response {
        do { return try await body() } catch { return self.error(error) }
    }

    /// What members send each other can be larger than a client body (it is re-encoded as JSON).
    static let maxMemberBody = 4 * maxBody + (1 << 20)

    static func collect(_ request: Request, limit: Int = maxBody) async throws -> String {
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return String(buffer: buffer)
        } catch is NIOTooManyBytesError {
            throw ReplicatedError(.bodyTooLarge, "the request body is larger than \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw ReplicatedError(.bodyTooLarge, "the request body is larger than \(limit) bytes")
        }
    }

    /// A JSON body between members.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let body = try await collect(request, limit: maxMemberBody)
        do { return try JSONDecoder().decode(T.self, from: Data(body.utf8)) } catch {
            throw ReplicatedError(.malformedRequest, "the body is not a \(T.self): \(error)")
        }
    }

    static func parameter(_ context: BasicRequestContext, _ name: String) throws -> String {
        guard let value = context.parameters.get(name) else { throw ReplicatedError(.malformedRequest, "missing \(name)") }
        return value
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
    /// `GET /admin/status`: metrics named as Stardog names its own (`{"name": {"value": …}}`),
    /// here the sizes of the commit rounds this node ran as coordinator.
    struct NodeMetrics: Encodable {
        var rounds: RoundStatistics.Summary
        init(_ node: ReplicatedNode) { rounds = node.coordinator.statistics.summary }
        enum CodingKeys: String, CodingKey { case rounds = "cluster.commit.round.size" }
    }

    public static func router(node: ReplicatedNode) -> Router<BasicRequestContext> {
        let router = Router()
        addAdmin(router, node)
        addDatabases(router, node)
        addReplication(router, node)
        return router
    }

    // MARK: Admin

    static func addAdmin(_ router: Router<BasicRequestContext>, _ node: ReplicatedNode) {
        router.get("/admin/alive") { _, _ in text("") }
        router.get("/admin/status") { _, _ in json(NodeMetrics(node)) }
        router.get("/admin/healthcheck") { _, _ -> Response in
            await node.inGoodStanding() ? text("") : error(ReplicatedNode.notInCluster)
        }
        router.get("/admin/cluster") { _, _ in
            await answer { json(NodeList(nodes: try await node.clusterView().members.sorted())) }
        }
        router.get("/admin/cluster/status") { _, _ in
            await answer {
                let (members, coordinator) = try await node.clusterView()
                let nodes = members.sorted { ($0 == coordinator ? 0 : 1, $0) < ($1 == coordinator ? 0 : 1, $1) }
                return json(ClusterStatus(nodes: nodes.map { NodeStatus(address: $0, role: $0 == coordinator ? "COORDINATOR" : "PARTICIPANT") }))
            }
        }
        router.get("/admin/cluster/coordinator") { _, _ -> Response in
            await node.isCoordinatorInGoodStanding() ? text("") : error(ReplicatedError(.notInCluster, "this node is not the coordinator"))
        }
        router.get("/admin/cluster/readonly") { _, _ in await answer { json(ReadOnlyState(readonly: try await node.isReadOnly())) } }
        router.put("/admin/cluster/readonly") { _, _ in
            await answer {
                try await node.setReadOnly(true)
                return json(ReadOnlyState(readonly: true))
            }
        }
        router.delete("/admin/cluster/readonly") { _, _ in
            await answer {
                try await node.setReadOnly(false)
                return json(ReadOnlyState(readonly: false))
            }
        }
        router.post("/admin/shutdownAll") { _, _ in await answer { json(NodeList(nodes: try await node.shutDownCluster())) } }
        router.get("/admin/databases") { _, _ in
            await answer {
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                return json(DatabaseList(databases: node.store.catalog.keys.sorted()))
            }
        }
        router.put("/admin/databases/:db") { _, context in
            await answer {
                let name = try parameter(context, "db")
                try DatabaseName.validate(name)
                _ = try await node.submit(ClusterOperation(kind: .createDatabase, database: name))
                return json(DatabaseList(databases: [name]), status: .created)
            }
        }
        router.delete("/admin/databases/:db") { _, context in
            await answer {
                let name = try parameter(context, "db")
                try DatabaseName.validate(name)
                _ = try await node.submit(ClusterOperation(kind: .dropDatabase, database: name))
                return json(DatabaseList(databases: [name]))
            }
        }
    }

    // MARK: Databases: transactions and reads

    static func addDatabases(_ router: Router<BasicRequestContext>, _ node: ReplicatedNode) {
        router.post("/:db/transaction/begin") { _, context in
            await answer { text(try await node.beginTransaction(database: try parameter(context, "db"))) }
        }
        router.post("/:db/:tx/add") { request, context in
            await answer {
                let body = try await collect(request)
                try await node.change(database: try parameter(context, "db"), transaction: try parameter(context, "tx"), adding: true, ntriples: body)
                return text("")
            }
        }
        router.post("/:db/:tx/remove") { request, context in
            await answer {
                let body = try await collect(request)
                try await node.change(database: try parameter(context, "db"), transaction: try parameter(context, "tx"), adding: false, ntriples: body)
                return text("")
            }
        }
        router.post("/:db/transaction/commit/:tx") { _, context in
            await answer {
                let database = try parameter(context, "db")
                let next = try await node.commitTransaction(database: database, transaction: try parameter(context, "tx"))
                return json(TransactionCommitted(database: database, seq: next?.seq, txId: next?.txId))
            }
        }
        router.post("/:db/transaction/rollback/:tx") { _, context in
            await answer {
                try node.rollbackTransaction(database: try parameter(context, "db"), transaction: try parameter(context, "tx"))
                return text("")
            }
        }
        router.post("/:db/add") { request, context in
            await answer { try await commitOneBody(request, context, node, adding: true) }
        }
        router.post("/:db/remove") { request, context in
            await answer { try await commitOneBody(request, context, node, adding: false) }
        }
        router.get("/:db/size") { _, context in
            await answer {
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                return text(String(try node.store.size(of: try parameter(context, "db"))))
            }
        }
        router.get("/:db/triples") { request, context in
            await answer {
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                let database = try parameter(context, "db")
                func term(_ name: String, _ role: String) throws -> RDFTerm? {
                    guard let value = request.uri.queryParameters.get(name), !value.isEmpty else { return nil }
                    do { return try NTriples.parseTerm(value, role: role) } catch {
                        throw ReplicatedError(.malformedRequest, "parameter \(name): \(error)")
                    }
                }
                let (s, p, o) = (try term("s", "subject"), try term("p", "predicate"), try term("o", "object"))
                let store = node.store
                let triples = try await runOffPool { try store.triples(in: database, subject: s, predicate: p, object: o) }
                return text(NTriples.serialize(triples), contentType: "application/n-triples")
            }
        }
    }

    /// `POST /<db>/add` and `/<db>/remove`: one body as one transaction.
    static func commitOneBody(_ request: Request, _ context: BasicRequestContext, _ node: ReplicatedNode, adding: Bool) async throws -> Response {
        let database = try parameter(context, "db")
        let body = try await collect(request)
        let triples = try await runOffPool { NTriples.serialize(try LocalStore.parse(body)) }
        guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
        guard node.store.version(of: database) != nil else { throw LocalStore.unknown(database) }
        let operation = ClusterOperation(kind: .transaction, database: database, add: adding ? triples : "", remove: adding ? "" : triples)
        let next = try await node.submit(operation)
        return json(TransactionCommitted(database: database, seq: next?.seq, txId: next?.txId))
    }

    // MARK: Between members

    static func addReplication(_ router: Router<BasicRequestContext>, _ node: ReplicatedNode) {
        router.post("/admin/replication/operation") { request, _ in
            await answer {
                let operation = try await decode(ClusterOperation.self, request)
                return json(OperationResult(next: try await node.coordinate(operation)))
            }
        }
        router.post("/admin/replication/prepare") { request, _ in
            await answer {
                try await node.participant.prepare(try await decode(PreparedBatch.self, request))
                return json(Done())
            }
        }
        router.post("/admin/replication/commit") { request, _ in
            await answer {
                try await node.participant.commit(round: try await decode(RoundDecision.self, request).round)
                return json(Done())
            }
        }
        router.post("/admin/replication/abort") { request, _ in
            await answer {
                try await node.participant.abort(round: try await decode(RoundDecision.self, request).round)
                return json(Done())
            }
        }
        router.get("/admin/replication/snapshot/:db") { _, context in
            await answer {
                guard await node.inGoodStanding() else { throw ReplicatedNode.notInCluster }
                let database = try parameter(context, "db")
                let store = node.store
                let (version, ntriples) = try await runOffPool { try store.snapshot(of: database) }
                var headers = HTTPFields()
                headers[HTTPField.Name("X-Replicated-Version")!] = String(decoding: try JSONEncoder().encode(version), as: UTF8.self)
                headers[.contentType] = "application/n-triples"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: ntriples)))
            }
        }
        router.post("/admin/replication/shutdown") { _, _ -> Response in
            Task {  // after the answer has left
                try? await Task.sleep(for: .milliseconds(200))
                node.shutDown()
            }
            return text("")
        }
    }
}
