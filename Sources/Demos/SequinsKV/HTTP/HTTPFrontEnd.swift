import DemoSupport
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The node's HTTP interface, exactly as sequins': `GET /<db>/<key>` (proxied to a peer when
/// another node holds the key), `GET /` and `GET /<db>` status (JSON with
/// `Accept: application/json`, HTML otherwise), `GET /healthz`; any other method is a 400.
struct HTTPFrontEnd: Sendable {
    let node: KVNode
    /// For status requests to peers.
    let proxyClient: HTTPClient
    /// For proxied key lookups.
    let peerClient: PeerClient

    static let versionHeader = HTTPField.Name("X-Sequins-Version")!
    static let proxiedToHeader = HTTPField.Name("X-Sequins-Proxied-To")!
    static let shardIDHeader = HTTPField.Name("X-Sequins-Shard-ID")!

    func run() async throws {
        guard let (host, port) = SequinsConfiguration.splitHostPort(node.configuration.bind) else {
            throw ConfigurationError("bind must be host:port, got \(node.configuration.bind)")
        }
        let responder = CallbackResponder<BasicRequestContext> { request, _ in await self.respond(to: request) }
        let onServing = node.onServing
        let logger = node.logger
        let application = Application(
            responder: responder,
            configuration: .init(address: .hostname(host, port: port), serverName: "kv"),
            onServerRunning: { channel in
                let boundPort = channel.localAddress?.port ?? port
                logger.info("serving HTTP", metadata: ["kv.bind": "\(host):\(boundPort)"])
                onServing(boundPort)
            },
            logger: logger)
        try await application.runService(gracefulShutdownSignals: [])
    }

    func respond(to request: Request) async -> Response {
        guard request.method == .get else {
            return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "only GET is supported\n")))
        }
        let path = request.uri.path
        let proxyParameter = request.uri.queryParameters["proxy"].map(String.init)
        if path == "/" || path.isEmpty {
            return await status(database: nil, request: request, forPeer: proxyParameter != nil)
        }
        if path == "/healthz" { return health() }
        let rest = path.dropFirst()
        let databaseName: String
        var rawKey: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            databaseName = String(decoding: PercentDecoding.decode(rest[..<slash]), as: UTF8.self)
            rawKey = rest[rest.index(after: slash)...]
        } else {
            databaseName = String(decoding: PercentDecoding.decode(rest), as: UTF8.self)
        }
        if databaseName.isEmpty {
            return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "no database in the path\n")))
        }
        if rawKey.isEmpty {
            guard node.database(databaseName) != nil else { return Response(status: .notFound) }
            return await status(database: databaseName, request: request, forPeer: proxyParameter != nil)
        }
        let started = ContinuousClock.now
        let response = await serveKey(database: databaseName, key: PercentDecoding.decode(rawKey), rawPath: path, proxyVersion: proxyParameter)
        let elapsed = ContinuousClock.now - started
        node.metrics.requests(status: Int(response.status.code)).increment()
        node.metrics.requestDuration.record(elapsed)
        return response
    }

    // MARK: Keys

    func serveKey(database databaseName: String, key: [UInt8], rawPath: String, proxyVersion: String?) async -> Response {
        guard let database = node.database(databaseName) else {
            return Response(status: proxyVersion != nil ? .notImplemented : .notFound)
        }
        let version = proxyVersion.map { database.versionForPeer(asking: $0) } ?? database.current
        guard let version else { return Response(status: proxyVersion != nil ? .notImplemented : .notFound) }
        version.touch()
        var headers = HTTPFields()
        headers[Self.versionHeader] = version.name
        if version.partitionCount == 0 { return Response(status: .notFound, headers: headers) }
        let location = KeyPartition(key: key, partitionCount: version.partitionCount)
        if let data = version.data, data.holds(location.partition) || data.holds(location.alternate) {
            headers[.lastModified] = HTTPDate.format(data.createdAt)
            if !node.configuration.contentType.isEmpty { headers[.contentType] = node.configuration.contentType }
            let value = key.withUnsafeBytes { key in data.withValue(for: key, in: location) { ByteBuffer(bytes: $0) } }
            guard let value else { return Response(status: .notFound, headers: headers) }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: value))
        }
        if proxyVersion != nil {
            return Response(status: .internalServerError, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "proxied to a node that does not hold the partition\n")))
        }
        return await serveProxied(version: version, location: location, rawPath: rawPath)
    }

    func serveProxied(version: Version, location: KeyPartition, rawPath: String) async -> Response {
        var peers = version.peers(holding: location.partition)
        if peers.isEmpty && location.alternate != location.partition { peers = version.peers(holding: location.alternate) }
        var headers = HTTPFields()
        headers[Self.versionHeader] = version.name
        guard !peers.isEmpty else {
            return Response(status: .badGateway, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "no peer holds the partition\n")))
        }
        let sharding = node.configuration.sharding
        let proxy = StagedProxy(totalTimeout: sharding.proxyTimeout, stageTimeout: sharding.effectiveProxyStageTimeout)
        let client = peerClient
        let peerPath = "\(rawPath)?proxy=\(version.name)"
        let attempt: @Sendable (String) -> StagedProxy.Attempt<PeerClient.Answer> = { peer in
            client.request(peer: peer, path: peerPath)
        }
        let isGood: @Sendable (PeerClient.Answer) -> Bool = { $0.status == 200 || $0.status == 404 }
        var result = await proxy.run(peers: peers, start: attempt, isGood: isGood)
        if case .success(let (_, answer)) = result, answer.status == 404, location.alternate != location.partition {
            let alternatePeers = version.peers(holding: location.alternate)
            if !alternatePeers.isEmpty { result = await proxy.run(peers: alternatePeers, start: attempt, isGood: isGood) }
        }
        switch result {
        case .success(let (peer, answer)):
            node.metrics.proxied.increment()
            headers[Self.versionHeader] = answer.headers.first(name: "X-Sequins-Version") ?? version.name
            headers[Self.proxiedToHeader] = peer
            headers[.lastModified] = HTTPDate.format(version.createdAt)
            if !node.configuration.contentType.isEmpty, answer.status == 200 { headers[.contentType] = node.configuration.contentType }
            return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: answer.body))
        case .failure(.noAvailablePeers):
            return Response(status: .badGateway, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "no peer could answer\n")))
        case .failure(.timeout):
            return Response(status: .gatewayTimeout, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "the peers did not answer in time\n")))
        case .failure(.cancelled):
            return Response(status: .init(code: 499, reasonPhrase: "Client Closed Request"), headers: headers)
        }
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
    func status(database: String?, request: Request, forPeer: Bool) async -> Response {
        var status = localStatus(database: database)
        if !forPeer, let cluster = node.cluster {
            // Every peer at once (one down costs its timeout once, not once per peer).
            let client = proxyClient
            let logger = node.logger
            let peerStatuses = await withTaskGroup(of: ClusterStatus?.self) { group in
                for peer in cluster.peers.keys {
                    group.addTask {
                        do {
                            var peerRequest = HTTPClientRequest(url: "http://\(peer)/?proxy=status")
                            peerRequest.headers.add(name: "Accept", value: "application/json")
                            let response = try await client.execute(peerRequest, timeout: .seconds(5))
                            let body = try await response.body.collect(upTo: 64 << 20)
                            return try JSONDecoder().decode(ClusterStatus.self, from: Data(buffer: body))
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
        let wantsJSON = request.headers[.accept] == "application/json" || forPeer
        if wantsJSON {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body: Data
            if let database, !forPeer {
                body = (try? encoder.encode(status.dbs[database] ?? ClusterStatus.DatabaseStatus(versions: [:]))) ?? Data()
            } else {
                body = (try? encoder.encode(status)) ?? Data()
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: StatusPage.html(status))))
    }

    /// `GET /healthz`: this node's versions; 200 if any is ACTIVE or BUILDING, else 404.
    func health() -> Response {
        var body: [String: [String: ClusterStatus.NodeVersionStatus]] = [:]
        var healthy = false
        for (name, database) in localStatus(database: nil).dbs {
            for (versionName, version) in database.versions {
                guard let nodeStatus = version.nodes.values.first else { continue }
                body[name, default: [:]][versionName] = nodeStatus
                if nodeStatus.state == .active || nodeStatus.state == .building { healthy = true }
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if node.configuration.sharding.enabled, let shardID = node.shardID { headers[Self.shardIDHeader] = shardID }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(body)) ?? Data()
        return Response(status: healthy ? .ok : .notFound, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
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
