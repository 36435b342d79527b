import DemoSupport
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The node's HTTP interface, exactly as sequins': `GET /<db>/<key>` (proxied to a peer when
/// another node holds the key), `GET /` and `GET /<db>` status (JSON with
/// `Accept: application/json`, HTML otherwise), `GET /healthz`; any other method is a 400.
///
/// A key this node holds, and a miss, are answered on the event loop that read the request
/// (``HTTPServer``); a proxied key is answered when the staged proxy, driven on that same loop,
/// completes; status pages run as a task.
struct HTTPFrontEnd: Sendable {
    let node: KVNode
    /// For proxied key lookups and status requests to peers.
    let peerClient: PeerClient

    static let versionHeader = "X-Sequins-Version"
    static let proxiedToHeader = "X-Sequins-Proxied-To"
    /// As Go's net/http writes sequins' `X-Sequins-Shard-ID` (canonical form).
    static let shardIDHeader = "X-Sequins-Shard-Id"
    static let allocator = ByteBufferAllocator()

    func run() async throws {
        guard let (host, port) = SequinsConfiguration.splitHostPort(node.configuration.bind) else {
            throw ConfigurationError("bind must be host:port, got \(node.configuration.bind)")
        }
        let node = self.node
        let logger = node.logger
        try await HTTPServer.run(host: host, port: port, logger: logger, onBound: { boundPort in
            logger.info("Listening on \(host):\(boundPort)", metadata: ["kv.bind": "\(host):\(boundPort)"])  // sequins' line
            node.didStartServing(port: boundPort)
        }) { head, _, eventLoop in
            respond(to: head, on: eventLoop)
        }
    }

    func respond(to request: HTTPRequestHead, on eventLoop: any EventLoop) -> HTTPAnswer {
        guard request.method == .GET else { return .now(HTTPReply(status: .badRequest)) }  // sequins: 400, no body
        let target = RequestTarget(request.uri)
        let forPeer = target.proxy != nil
        switch target.route {
        case .clusterStatus: return status(database: nil, request: request, forPeer: forPeer, on: eventLoop)
        case .health: return .now(health())
        case .noDatabase: return .now(HTTPReply(status: .badRequest))
        case .databaseStatus(let databaseName):
            guard node.database(databaseName) != nil else { return .now(HTTPReply(status: .notFound)) }
            return status(database: databaseName, request: request, forPeer: forPeer, on: eventLoop)
        case .key:
            break
        }
        let started = NIODeadline.now()
        let answer = serveKey(database: target.database, key: target.key, rawPath: target.path, proxyVersion: target.proxy, on: eventLoop)
        let metrics = node.metrics
        switch answer {
        case .now(let reply):
            metrics.requests(status: Int(reply.status.code)).increment()
            metrics.requestDuration.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
        case .later(let future, _):
            future.whenSuccess { reply in
                metrics.requests(status: Int(reply.status.code)).increment()
                metrics.requestDuration.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
            }
        }
        return answer
    }

    // MARK: Keys

    func serveKey(database databaseName: String, key: [UInt8], rawPath: Substring, proxyVersion: Substring?, on eventLoop: any EventLoop) -> HTTPAnswer {
        guard let database = node.database(databaseName) else {
            return .now(HTTPReply(status: proxyVersion != nil ? .notImplemented : .notFound))
        }
        let version = proxyVersion.map { database.versionForPeer(asking: String($0)) } ?? database.current
        guard let version else { return .now(HTTPReply(status: proxyVersion != nil ? .notImplemented : .notFound)) }
        version.touch()
        if version.partitionCount == 0 { return .now(HTTPReply(status: .notFound, headers: [Self.versionHeader: version.name])) }
        let location = KeyPartition(key: key, partitionCount: version.partitionCount)
        if let data = version.data, data.holds(location.partition) || data.holds(location.alternate) {
            var headers: HTTPHeaders = [Self.versionHeader: version.name]
            let lookup = key.withUnsafeBytes { key in
                Result { () throws(PartitionDamage) in try data.value(for: key, in: location, allocator: Self.allocator) }
            }
            let value: ByteBuffer?
            switch lookup {
            case .success(let found): value = found
            case .failure(let damage):
                node.repair(version, damage)
                // Never answered from a damaged page: another holder answers, or the client hears why.
                if proxyVersion == nil, !version.peers(holding: damage.partition ?? location.partition).isEmpty {
                    return serveProxied(version: version, location: location, rawPath: rawPath, on: eventLoop)
                }
                return .now(HTTPReply(status: .internalServerError, headers: headers, body: ByteBuffer(string: "\(damage); building it again\n")))
            }
            guard let value else { return .now(HTTPReply(status: .notFound, headers: headers)) }
            headers.add(name: "Last-Modified", value: data.lastModified)
            // Go's net/http sniffs a type for a non-empty body that has none (sequins sets none).
            if value.readableBytes > 0 {
                value.withUnsafeReadableBytes { headers.add(name: "Content-Type", value: "\(ContentSniffing.contentType(of: $0))") }
            }
            return .now(HTTPReply(status: .ok, headers: headers, body: value))
        }
        if proxyVersion != nil {
            return .now(
                HTTPReply(status: .internalServerError, headers: [Self.versionHeader: version.name], body: ByteBuffer(string: "proxied to a node that does not hold the partition\n")))
        }
        return serveProxied(version: version, location: location, rawPath: rawPath, on: eventLoop)
    }

    func serveProxied(version: Version, location: KeyPartition, rawPath: Substring, on eventLoop: any EventLoop) -> HTTPAnswer {
        let holders = version.peers(holding: location.partition)
        // Nobody holds the partition: its alternate's holders are asked first, and then not again.
        let alternateAsked = holders.isEmpty && location.alternate != location.partition
        let peers = alternateAsked ? version.peers(holding: location.alternate) : holders
        guard !peers.isEmpty else {
            return .now(HTTPReply(status: .badGateway, headers: [Self.versionHeader: version.name], body: ByteBuffer(string: "no peer holds the partition\n")))
        }
        let sharding = node.configuration.sharding
        let proxy = StagedProxy(totalTimeout: sharding.proxyTimeout, stageTimeout: sharding.effectiveProxyStageTimeout)
        let client = peerClient
        let peerPath = "\(rawPath)?proxy=\(version.name)"
        let attempt: @Sendable (String) -> StagedProxy.Attempt<PeerClient.Answer> = { peer in
            client.request(peer: peer, path: peerPath)
        }
        let isGood: @Sendable (PeerClient.Answer) -> Bool = { $0.status == 200 || $0.status == 404 }
        // The attempt under way, stopped if the client leaves (sequins answers such a request 499).
        let first = proxy.begin(peers: peers, on: eventLoop, start: attempt, isGood: isGood)
        let cancelCurrent = NIOLockedValueBox<@Sendable () -> Void>(first.cancel)
        let outcome = first.outcome.flatMap { result -> EventLoopFuture<StagedProxy.Outcome<PeerClient.Answer>> in
            // A 404 from the partition's holders: the key may be in the alternate partition.
            guard case .success(let (_, answer)) = result, answer.status == 404, location.alternate != location.partition, !alternateAsked else {
                return eventLoop.makeSucceededFuture(result)
            }
            let alternatePeers = version.peers(holding: location.alternate)
            if alternatePeers.isEmpty { return eventLoop.makeSucceededFuture(result) }
            let alternate = proxy.begin(peers: alternatePeers, on: eventLoop, start: attempt, isGood: isGood)
            cancelCurrent.withLockedValue { $0 = alternate.cancel }
            return alternate.outcome
        }
        let metrics = node.metrics
        return .later(
            outcome.map { result in
                var headers: HTTPHeaders = [Self.versionHeader: version.name]
                switch result {
                case .success(let (peer, answer)):
                    metrics.proxied.increment()
                    headers.replaceOrAdd(name: Self.versionHeader, value: answer.headers.first(name: Self.versionHeader) ?? version.name)
                    headers.add(name: Self.proxiedToHeader, value: peer)
                    headers.add(name: "Last-Modified", value: version.lastModified)
                    // Sniffed here, as sequins' net/http does for what it copies from the peer.
                    if answer.body.readableBytes > 0 {
                        answer.body.withUnsafeReadableBytes { headers.add(name: "Content-Type", value: "\(ContentSniffing.contentType(of: $0))") }
                    }
                    return HTTPReply(status: HTTPResponseStatus(statusCode: answer.status), headers: headers, body: answer.body)
                case .failure(.noAvailablePeers):
                    return HTTPReply(status: .badGateway, headers: headers, body: ByteBuffer(string: "no peer could answer\n"))
                case .failure(.timeout):
                    return HTTPReply(status: .gatewayTimeout, headers: headers, body: ByteBuffer(string: "the peers did not answer in time\n"))
                case .failure(.cancelled):
                    return HTTPReply(status: .custom(code: 499, reasonPhrase: "Client Closed Request"), headers: headers)
                }
            },
            whenClientLeaves: { cancelCurrent.withLockedValue { $0 }() })
    }

    // MARK: Status and health

    /// This node's own view of its versions.
    func localStatus(database: String?) -> ClusterStatus {
        var status = ClusterStatus(dbs: [:], shardID: node.shardID)
        let replication = node.configuration.sharding.enabled ? node.configuration.sharding.replication : 1
        for db in node.databases where database == nil || db.name == database {
            var versions: [String: ClusterStatus.VersionStatus] = [:]
            let current = db.currentName
            for version in db.versions {
                let nodeStatus = ClusterStatus.NodeVersionStatus(
                    name: node.statusName, createdAt: version.createdAt.formatted(ClusterStatus.timestampFormat),
                    activeAt: version.activeAt?.formatted(ClusterStatus.timestampFormat), current: version.name == current,
                    state: version.state, partitions: version.selected.sorted(), shardID: node.shardID)
                var versionStatus = ClusterStatus.VersionStatus(
                    path: version.sourcePath, numPartitions: version.partitionCount, targetReplication: replication,
                    replicationHistogram: [:], averageReplication: 0, missingPartitions: 0, underreplicatedPartitions: 0,
                    overreplicatedPartitions: 0, nodes: [node.statusName: nodeStatus])
                versionStatus.computeReplication()
                versions[version.name] = versionStatus
            }
            status.dbs[db.name] = ClusterStatus.DatabaseStatus(versions: versions)
        }
        return status
    }

    /// The cluster's status: this node's, merged with every peer's (asked with `?proxy=status`).
    func status(database: String?, request: HTTPRequestHead, forPeer: Bool, on eventLoop: any EventLoop) -> HTTPAnswer {
        let wantsJSON = request.headers.first(name: "Accept") == "application/json" || forPeer
        let promise = eventLoop.makePromise(of: HTTPReply.self)
        promise.completeWithTask { await status(database: database, json: wantsJSON, forPeer: forPeer) }
        return .later(promise.futureResult)
    }

    private func status(database: String?, json wantsJSON: Bool, forPeer: Bool) async -> HTTPReply {
        var status = localStatus(database: database)
        if !forPeer, let cluster = node.cluster {
            // Every peer at once (one down costs its timeout once, not once per peer).
            let client = peerClient
            let logger = node.logger
            let peerStatuses = await withTaskGroup(of: ClusterStatus?.self) { group in
                for peer in cluster.peers.keys {
                    group.addTask {
                        do {
                            let answer = try await client.send(
                                peer: peer, path: "/?proxy=status", extraHeaders: ["Accept": "application/json"], timeout: .seconds(5))
                            guard answer.status == 200 else { throw PeerStatusError(status: answer.status) }
                            return try JSONDecoder().decode(ClusterStatus.self, from: Data(answer.body.readableBytesView))
                        } catch {
                            logger.debug("a peer's status is unavailable", metadata: ["kv.peer": "\(peer)", "kv.error": "\(error)"])
                            return nil
                        }
                    }
                }
                var statuses: [ClusterStatus] = []
                for await peerStatus in group { if let peerStatus { statuses.append(peerStatus) } }
                return statuses
            }
            for var peerStatus in peerStatuses {
                if let database { peerStatus.dbs = peerStatus.dbs.filter { $0.key == database } }
                status.merge(peerStatus)
            }
        }
        if wantsJSON {
            let body: String
            if let database, !forPeer {
                var json = GoJSON()
                json.write(status.dbs[database] ?? ClusterStatus.DatabaseStatus(versions: [:]))
                body = json.text
            } else {
                body = status.goJSON
            }
            return HTTPReply(status: .ok, headers: ["Content-Type": "application/json"], body: ByteBuffer(string: body))
        }
        return HTTPReply(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8"], body: ByteBuffer(string: StatusPage.html(status)))
    }

    /// `GET /healthz`: this node's versions; 200 if any is ACTIVE or BUILDING, else 404.
    func health() -> HTTPReply {
        var body: [String: [String: ClusterStatus.NodeVersionStatus]] = [:]
        var healthy = false
        for (name, database) in localStatus(database: nil).dbs {
            for (versionName, version) in database.versions {
                guard let nodeStatus = version.nodes.values.first else { continue }
                body[name, default: [:]][versionName] = nodeStatus
                if nodeStatus.state == .active || nodeStatus.state == .building { healthy = true }
            }
        }
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if node.configuration.sharding.enabled, let shardID = node.shardID { headers.add(name: Self.shardIDHeader, value: shardID) }
        return HTTPReply(status: healthy ? .ok : .notFound, headers: headers, body: ByteBuffer(string: ClusterStatus.healthJSON(body)))
    }

}

/// A peer answered its status with another status than 200.
struct PeerStatusError: Error, CustomStringConvertible {
    var status: Int
    var description: String { "the peer answered HTTP \(status)" }
}

/// A request target (`/db/key?proxy=v1`) taken apart in one pass over its bytes: the route, the
/// database and key (percent-decoded; keys are bytes), and the `proxy` query parameter, with
/// which sequins' peers ask (`?proxy=<version>`, `?proxy=status` for status pages).
struct RequestTarget {
    enum Route: Equatable {
        case clusterStatus, health, noDatabase
        case databaseStatus(String)
        case key
    }

    var route: Route = .clusterStatus
    /// The path without the query.
    var path: Substring
    var proxy: Substring?
    var database = ""
    var key: [UInt8] = []

    init(_ uri: String) {
        let question = uri.utf8.firstIndex(of: UInt8(ascii: "?"))
        path = uri[..<(question ?? uri.endIndex)]
        if let question {
            // The first `proxy` parameter decides, and an empty one is no proxy, as Go's
            // `Query().Get("proxy") != ""` in sequins.
            for pair in uri[uri.index(after: question)...].split(separator: "&") where pair == "proxy" || pair.hasPrefix("proxy=") {
                let value = pair.dropFirst("proxy".count).dropFirst()
                proxy = value.isEmpty ? nil : value
                break
            }
        }
        let bytes = path.utf8
        guard bytes.count > 1 else { return }  // "" or "/"
        if path == "/healthz" {
            route = .health
            return
        }
        let afterFirst = bytes.index(after: bytes.startIndex)
        let slash = bytes[afterFirst...].firstIndex(of: UInt8(ascii: "/"))
        database = Self.decodedString(bytes[afterFirst..<(slash ?? bytes.endIndex)])
        if database.isEmpty {
            route = .noDatabase
            return
        }
        if let slash, bytes.index(after: slash) < bytes.endIndex {
            route = .key
            key = PercentDecoding.decode(bytes[bytes.index(after: slash)...])
        } else {
            route = .databaseStatus(database)
        }
    }

    /// A database name: taken as is unless it has an escape.
    private static func decodedString(_ bytes: Substring.UTF8View.SubSequence) -> String {
        bytes.contains(UInt8(ascii: "%")) ? String(decoding: PercentDecoding.decode(bytes), as: UTF8.self) : String(Substring(bytes))
    }
}

/// The readable status page.
enum StatusPage {
    static func html(_ status: ClusterStatus) -> String {
        var html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>kv status</title>"
        html += "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
        html += "<h1>kv cluster status</h1>"
        if let shardID = status.shardID { html += "<p>This node's shard id: \(escape(shardID))</p>" }
        if status.dbs.isEmpty { html += "<p>No databases.</p>" }
        for (name, database) in status.dbs.sorted(by: { $0.key < $1.key }) {
            html += "<h2>\(escape(name))</h2>"
            for (versionName, version) in database.versions.sorted(by: { $0.key < $1.key }) {
                html += "<h3>version \(escape(versionName))</h3><p>\(version.numPartitions) partitions, target replication \(version.targetReplication), "
                html += "average \(String(format: "%.2f", version.averageReplication)), missing \(version.missingPartitions), "
                html += "under-replicated \(version.underreplicatedPartitions), over-replicated \(version.overreplicatedPartitions)</p>"
                html += "<table><tr><th>node</th><th>shard</th><th>state</th><th>current</th><th>partitions</th></tr>"
                for (nodeName, node) in version.nodes.sorted(by: { $0.key < $1.key }) {
                    html += "<tr><td>\(escape(nodeName))</td><td>\(escape(node.shardID ?? ""))</td><td>\(node.state.rawValue)</td>"
                    html += "<td>\(node.current ? "yes" : "")</td><td>\(node.partitions.map(String.init).joined(separator: ", "))</td></tr>"
                }
                html += "</table>"
            }
        }
        return html + "</body></html>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
