import DemoSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ZooKeeper

/// The HTTP interfaces, on the demos' NIO server (``HTTPServer``): a node's search port
/// (`/node/search`, `/node/sysinfo`, `/node/get`, used by brokers) and the broker's (`/sensei`,
/// `/sensei/sysinfo`, `/sensei/get`, Sensei's API). Searches run as tasks on the event loop that
/// read the request (the search process runs Swift concurrency on NIO's loops).
public enum SearchHTTP {
    static func json(_ data: Data, status: HTTPResponseStatus = .ok) -> HTTPReply {
        json(ByteBuffer(bytes: data), status: status)
    }

    static func json(_ body: ByteBuffer, status: HTTPResponseStatus = .ok) -> HTTPReply {
        HTTPReply(status: status, headers: ["Content-Type": "application/json; charset=utf-8", "Access-Control-Allow-Origin": "*"], body: body)
    }

    static func badRequest(_ message: String) -> HTTPReply {
        HTTPReply(status: .badRequest, headers: ["Content-Type": "text/plain; charset=utf-8"], body: ByteBuffer(string: message + "\n"))
    }

    static let notFound = HTTPReply(status: .notFound, headers: ["Content-Type": "text/plain; charset=utf-8"], body: ByteBuffer(string: "no such route\n"))

    /// The answer of `work`, run as a task (it may wait for other nodes or search threads).
    static func later(on eventLoop: any EventLoop, _ work: @escaping @Sendable () async throws -> HTTPReply) -> HTTPAnswer {
        let promise = eventLoop.makePromise(of: HTTPReply.self)
        promise.completeWithTask {
            do { return try await work() } catch let error as RequestError {
                return badRequest(error.description)
            } catch let error as QueryParseError {
                return badRequest(error.description)
            }
        }
        return .later(promise.futureResult)
    }

    /// The search a broker asks a node for: in ``SearchRequestWire``'s layout, or as JSON (tools).
    /// - Throws: ``RequestError`` (answered 400) saying what is wrong with it.
    static func nodeRequest(_ head: HTTPRequestHead, _ body: ByteBuffer?) throws -> SearchRequest {
        guard let body else { throw RequestError("the body is not a search request") }
        if head.headers.first(name: "Content-Type") == SearchRequestWire.contentType {
            return try SearchRequestWire.decode(body)
        }
        guard let request = try? JSONDecoder().decode(SearchRequest.self, from: Data(body.readableBytesView)) else {
            throw RequestError("the body is not a search request")
        }
        return request
    }

    /// The path and the raw query of a request target.
    static func split(_ uri: String) -> (path: Substring, query: Substring) {
        guard let question = uri.firstIndex(of: "?") else { return (uri[...], "") }
        return (uri[..<question], uri[uri.index(after: question)...])
    }

    /// Whether a POST body is a form (`json=…` or the URL parameters) rather than JSON itself.
    static func isForm(_ head: HTTPRequestHead) -> Bool {
        head.headers.first(name: "Content-Type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true
    }

    // MARK: The node's search port

    /// Serves the node's search port until the task is cancelled.
    public static func runNode(
        index: NodeIndex, nodeID: Int, host: String, port: Int, address: String, partitionTimeout: Duration, logger: Logger
    ) async throws {
        try await HTTPServer.run(host: host, port: port, logger: logger) { head, body, eventLoop in
            switch (head.method, split(head.uri).path) {
            case (.POST, "/node/search"):
                let received = ContinuousClock.now
                return later(on: eventLoop) {
                    let started = ContinuousClock.now
                    let request = try nodeRequest(head, body)
                    let decoded = ContinuousClock.now
                    let result = try await index.search(request, timeout: partitionTimeout)
                    let searched = ContinuousClock.now
                    let reply = HTTPReply(status: .ok, headers: ["Content-Type": SearchResultWire.contentType], body: SearchResultWire.encode(result))
                    if logger.logLevel <= .debug {
                        logger.debug("node search stages", metadata: [
                            "search.queued_us": "\(SearchBroker.microseconds(started - received))",
                            "search.decode_us": "\(SearchBroker.microseconds(decoded - started))",
                            "search.search_us": "\(SearchBroker.microseconds(searched - decoded))",
                            "search.encode_us": "\(SearchBroker.microseconds(ContinuousClock.now - searched))",
                        ])
                    }
                    return reply
                }
            case (.GET, "/node/sysinfo"):
                let info = SearchBroker.NodeInfo(
                    id: nodeID, partitions: index.partitions, numdocs: index.documentCount, numdocsByPartition: index.documentsByPartition,
                    address: address, malformedLines: index.report.malformed, searchesByPartition: index.searchesByPartition)
                return .now((try? JSONEncoder().encode(info)).map { json($0) } ?? HTTPReply(status: .internalServerError))
            case (.POST, "/node/get"):
                guard let body, let uids = try? JSONDecoder().decode([String].self, from: Data(body.readableBytesView)) else {
                    return .now(badRequest("the body must be a JSON array of uids"))
                }
                return later(on: eventLoop) { json(try JSONEncoder().encode(try await runOffPool { index.documents(uids: uids) })) }
            default:
                return .now(notFound)
            }
        }
    }

    // MARK: The broker's port (Sensei's API)

    /// Serves Sensei's API until the task is cancelled; `onBound` is called once it listens.
    public static func runBroker(
        broker: SearchBroker, schema: SearchSchema, host: String, port: Int, logger: Logger, onBound: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        try await HTTPServer.run(host: host, port: port, logger: logger, onBound: onBound) { head, body, eventLoop in
            guard head.method == .GET || head.method == .POST else { return .now(badRequest("only GET and POST are supported")) }
            let (path, query) = split(head.uri)
            switch path {
            case "/sensei/sysinfo":
                return later(on: eventLoop) { try await systemInfo(broker: broker, schema: schema) }
            case "/sensei/get":
                return later(on: eventLoop) { try await documents(broker: broker, head: head, query: query, body: body) }
            case "/sensei", "/sensei/":
                let received = ContinuousClock.now
                return later(on: eventLoop) {
                    let parsing = ContinuousClock.now
                    let request = try searchRequest(head: head, query: query, body: body)
                    try request.validated(against: schema)
                    let started = ContinuousClock.now
                    let result = await broker.search(request)
                    let searched = ContinuousClock.now
                    let milliseconds = Int((searched - started) / .milliseconds(1))
                    let reply = json(SenseiResponse.json(result, request: request, milliseconds: milliseconds))
                    if logger.logLevel <= .debug {
                        logger.debug("broker request stages", metadata: [
                            "search.queued_us": "\(SearchBroker.microseconds(parsing - received))",
                            "search.parse_us": "\(SearchBroker.microseconds(started - parsing))",
                            "search.search_us": "\(SearchBroker.microseconds(searched - started))",
                            "search.encode_us": "\(SearchBroker.microseconds(ContinuousClock.now - searched))",
                        ])
                    }
                    return reply
                }
            default:
                return .now(notFound)
            }
        }
    }

    /// The search a request describes: the JSON body of a POST, or `json=` or Sensei's older
    /// parameters in the query string or in a form body (form-decoded, as Jetty does).
    static func searchRequest(head: HTTPRequestHead, query: Substring, body: ByteBuffer?) throws -> SearchRequest {
        let parameters: [(name: String, value: String)]
        if head.method == .POST {
            let text = body.map { String(buffer: $0) } ?? ""
            guard isForm(head) else { return try SearchRequest(senseiJSON: Data(text.utf8)) }
            parameters = FormEncoding.decode(text)
        } else {
            parameters = FormEncoding.decode(query)
        }
        if let json = parameters.first(where: { $0.name == "json" })?.value { return try SearchRequest(senseiJSON: Data(json.utf8)) }
        return try SearchRequest(parameters: parameters)
    }

    static func systemInfo(broker: SearchBroker, schema: SearchSchema) async throws -> HTTPReply {
        let (numdocs, nodes) = await broker.systemInfo()
        let facets = schema.facets.map { ["name": $0.name, "runtime": false, "props": ["type": $0.type.rawValue, "column": $0.column]] as [String: Any] }
        let clusterinfo = nodes.map { ["id": $0.id, "partitions": $0.partitions, "nodelink": "http://\($0.address)/node/sysinfo", "adminlink": ""] as [String: Any] }
        // numdocs counts every replica (Sensei's sys broker asks every node); distinctdocs
        // counts each partition once.
        return json(SenseiResponse.data([
            "numdocs": numdocs, "distinctdocs": SearchBroker.distinctDocuments(nodes), "lastmodified": Int(Date().timeIntervalSince1970 * 1000),
            "version": "swift-zookeeper-coordination", "facets": facets, "clusterinfo": clusterinfo,
        ] as [String: Any]))
    }

    /// `/sensei/get?json=[uids]`, or a POST of the JSON array (or of a form with `json=`).
    static func documents(broker: SearchBroker, head: HTTPRequestHead, query: Substring, body: ByteBuffer?) async throws -> HTTPReply {
        var text = FormEncoding.decode(query).first { $0.name == "json" }?.value
        if head.method == .POST {
            let content = body.map { String(buffer: $0) } ?? ""
            text = isForm(head) ? FormEncoding.decode(content).first { $0.name == "json" }?.value : content
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
}
