import DemoSupport
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ZooKeeper

/// The HTTP interfaces: a node's search port (`/node/search`, `/node/sysinfo`, `/node/get`, used
/// by brokers) and the broker's (`/sensei`, `/sensei/sysinfo`, `/sensei/get`, Sensei's API).
public enum SearchHTTP {
    static func json(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[HTTPField.Name("Access-Control-Allow-Origin")!] = "*"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func badRequest(_ message: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .badRequest, headers: headers, body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    static let maxBody = 16 << 20

    /// Whether a POST body is a form (`json=…` or the URL parameters) rather than JSON itself.
    static func isForm(_ request: Request) -> Bool {
        request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true
    }

    /// The node's search port.
    public static func nodeRouter(index: NodeIndex, nodeID: Int, address: String, partitionTimeout: Duration) -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/node/search") { request, _ -> Response in
            let body = try await request.body.collect(upTo: maxBody)
            guard let searchRequest = try? JSONDecoder().decode(SearchRequest.self, from: Data(buffer: body)) else {
                return badRequest("the body is not a search request")
            }
            do {
                return json(try JSONEncoder().encode(try await index.search(searchRequest, timeout: partitionTimeout)))
            } catch let error as RequestError {
                return badRequest(error.description)
            } catch let error as QueryParseError {
                return badRequest(error.description)
            }
        }
        router.get("/node/sysinfo") { _, _ -> Response in
            let info = SearchBroker.NodeInfo(
                id: nodeID, partitions: index.partitions, numdocs: index.documentCount, numdocsByPartition: index.documentsByPartition,
                address: address, malformedLines: index.report.malformed,
                searchesByPartition: index.searchesByPartition)
            return json(try JSONEncoder().encode(info))
        }
        router.post("/node/get") { request, _ -> Response in
            let body = try await request.body.collect(upTo: maxBody)
            guard let uids = try? JSONDecoder().decode([String].self, from: Data(buffer: body)) else { return badRequest("the body must be a JSON array of uids") }
            return json(try JSONEncoder().encode(try await runOffPool { index.documents(uids: uids) }))
        }
        return router
    }

    /// The broker's port: Sensei's `/sensei` API.
    public static func brokerRouter(broker: SearchBroker, schema: SearchSchema) -> Router<BasicRequestContext> {
        let router = Router()
        @Sendable func search(_ request: SearchRequest) async -> Response {
            let started = ContinuousClock.now
            let result = await broker.search(request)
            let milliseconds = Int((ContinuousClock.now - started).milliseconds)
            return json(SenseiResponse.data(SenseiResponse.object(result, request: request, milliseconds: milliseconds)))
        }
        @Sendable func parse(_ request: Request) async throws -> SearchRequest {
            let parameters: [(name: String, value: String)]
            if request.method == .post {
                let body = try await request.body.collect(upTo: maxBody)
                guard isForm(request) else { return try SearchRequest(senseiJSON: Data(buffer: body)) }
                parameters = FormEncoding.decode(String(buffer: body))
            } else {
                parameters = FormEncoding.decode(request.uri.query ?? "")
            }
            if let json = parameters.first(where: { $0.name == "json" })?.value { return try SearchRequest(senseiJSON: Data(json.utf8)) }
            return try SearchRequest(parameters: parameters)
        }
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            do {
                let searchRequest = try await parse(request)
                try searchRequest.validated(against: schema)
                return await search(searchRequest)
            } catch let error as RequestError {
                return badRequest(error.description)
            } catch let error as QueryParseError {
                return badRequest(error.description)
            }
        }
        router.get("/sensei", use: handler)
        router.post("/sensei", use: handler)
        router.get("/sensei/sysinfo") { _, _ -> Response in
            let (numdocs, nodes) = await broker.systemInfo()
            let facets = schema.facets.map { ["name": $0.name, "runtime": false, "props": ["type": $0.type.rawValue, "column": $0.column]] as [String: Any] }
            let clusterinfo = nodes.map { ["id": $0.id, "partitions": $0.partitions, "nodelink": "http://\($0.address)/node/sysinfo", "adminlink": ""] as [String: Any] }
            // numdocs counts every replica (Sensei's sys broker asks every node); distinctdocs
            // counts each partition once.
            return json(SenseiResponse.data([
                "numdocs": numdocs, "distinctdocs": SearchBroker.distinctDocuments(nodes), "lastmodified": Int(Date().timeIntervalSince1970 * 1000), "version": "swift-zookeeper-coordination",
                "facets": facets, "clusterinfo": clusterinfo,
            ] as [String: Any]))
        }
        let get: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var text = FormEncoding.decode(request.uri.query ?? "").first { $0.name == "json" }?.value
            if request.method == .post {
                let body = String(buffer: try await request.body.collect(upTo: maxBody))
                text = isForm(request) ? FormEncoding.decode(body).first { $0.name == "json" }?.value : body
            }
            guard let text, let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
                return badRequest("get needs json=[uid,...]")
            }
            let uids = list.map { ($0 as? String) ?? "\($0)" }
            let found = await broker.documents(uids: uids)
            var object: [String: Any] = [:]
            for (uid, source) in found { object[uid] = (try? JSONSerialization.jsonObject(with: Data(source.utf8))) ?? source }
            return json(SenseiResponse.data(object))
        }
        router.get("/sensei/get", use: get)
        router.post("/sensei/get", use: get)
        return router
    }
}
