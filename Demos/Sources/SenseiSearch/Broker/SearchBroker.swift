import DemoSupport
import Foundation
import Logging
import NIOCore
import Synchronization

/// Sensei's broker: for each query, one replica per live partition chosen by consistent hashing
/// of `routeParam` (random without one), one request per chosen node listing its partitions,
/// gathered in parallel within `sensei.broker.timeout`, merged. A node that fails or times out is
/// left out and the result's `errors` names the partitions that are missing; the request itself
/// never fails. No live node at all: an empty result with an error.
///
/// The broker of a search node searches that node's own partitions in process
/// (``searchLocally(nodeID:index:partitionTimeout:)``): without a `routeParam` the replica of a
/// partition is anyone's, so the node's own is taken where it is live, and whichever replica a
/// `routeParam` chose is asked without a loopback round trip when it is this node. They are
/// searched once the other nodes' requests are out, one after another on the request's task:
/// the other nodes search on the other cores meanwhile, and no hop to a search thread is paid.
public final class SearchBroker: Sendable {
    public let cluster: SearchCluster
    /// Kept-alive connections to the nodes, on the event loop of the request being answered.
    let client: PeerClient
    let timeout: Duration
    /// The cluster's partition count, when known: partitions with no live node are reported.
    let partitionCount: Int
    let logger: Logger
    private let cachedRouting = Mutex<Routing?>(nil)
    private let local = Mutex<LocalNode?>(nil)

    /// The search node in the same process, once it serves.
    struct LocalNode: Sendable {
        var nodeID: Int
        var index: NodeIndex
        var partitionTimeout: Duration
    }

    /// What a view gives the broker: the router and each node's address.
    struct Routing: Sendable {
        var view: [Int: [SearchNodeAddress]]
        var router: ConsistentHashRouter
        var addresses: [Int: String]
    }

    public init(cluster: SearchCluster, client: PeerClient, timeout: Duration, partitionCount: Int, logger: Logger) {
        self.cluster = cluster
        self.client = client
        self.timeout = timeout
        self.partitionCount = partitionCount
        self.logger = logger
    }

    /// The routing for the current view (rebuilt only when the view changed).
    func routing() -> Routing {
        let view = cluster.view
        if let cached = cachedRouting.withLock({ $0 }), cached.view == view { return cached }
        var addresses: [Int: String] = [:]
        for nodes in view.values { for node in nodes { addresses[node.nodeId] = node.address } }
        let built = Routing(view: view, router: ConsistentHashRouter(view: view.mapValues { $0.map(\.nodeId) }), addresses: addresses)
        cachedRouting.withLock { $0 = built }
        return built
    }

    /// Searches the partitions of node `nodeID` in process, through `index`, from now on.
    func searchLocally(nodeID: Int, index: NodeIndex, partitionTimeout: Duration) {
        local.withLock { $0 = LocalNode(nodeID: nodeID, index: index, partitionTimeout: partitionTimeout) }
    }

    /// `plan` with every partition that `node` serves live (in `view`) moved to it.
    static func preferring(_ node: Int, in plan: [Int: [Int]], view: [Int: [SearchNodeAddress]]) -> [Int: [Int]] {
        var preferred: [Int: [Int]] = [:]
        for (planned, partitions) in plan {
            for partition in partitions {
                let owner = view[partition]?.contains { $0.nodeId == node } == true ? node : planned
                preferred[owner, default: []].append(partition)
            }
        }
        return preferred.mapValues { $0.sorted() }
    }

    public func search(_ request: SearchRequest) async -> SearchResult {
        let started = ContinuousClock.now
        let routing = routing()
        let local = self.local.withLock { $0 }
        let key = request.routeParam ?? String((0..<4).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        var plan = routing.router.plan(for: key)
        if request.routeParam == nil, let local { plan = Self.preferring(local.nodeID, in: plan, view: routing.view) }
        guard !plan.isEmpty else {
            var empty = ResultMerger.merge([], request: request)
            empty.errors.append(.init(errorType: "BrokerGatherError", message: "no search nodes to handle the request", errorCode: 500))
            return empty
        }
        let nodeRequest = request.forNodes
        let planned = ContinuousClock.now
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        // The other nodes' requests go out first; this node's own partitions are then searched on
        // this task, one after another, while the other nodes search theirs on the other cores.
        var outcomes: [NodeOutcome] = []
        var sent: [(node: Int, partitions: [Int], asked: ContinuousClock.Instant, request: SentRequest)] = []
        var ownPartitions: [Int]?
        for (node, partitions) in plan.sorted(by: { $0.key < $1.key }) {
            guard let address = routing.addresses[node] else { continue }
            if let local, local.nodeID == node {
                ownPartitions = partitions
                continue
            }
            var perNode = nodeRequest
            perNode.partitions = partitions
            let asked = ContinuousClock.now
            let body = SearchRequestWire.encode(perNode)
            sent.append((node, partitions, asked, send(address: address, path: "/node/search", body: body, contentType: SearchRequestWire.contentType, deadline: deadline)))
        }
        if let local, let partitions = ownPartitions {
            var perNode = nodeRequest
            perNode.partitions = partitions
            outcomes.append(await NodeOutcome.of(node: local.nodeID, partitions: partitions, askedAt: .now) {
                try await local.index.search(perNode, timeout: local.partitionTimeout, onCallingTask: !sent.isEmpty)
            })
        }
        for (node, partitions, asked, request) in sent {
            outcomes.append(await NodeOutcome.of(node: node, partitions: partitions, askedAt: asked) {
                try SearchResultWire.decode(try await request.answer(), sortFields: nodeRequest.sort.count)
            })
        }
        var results: [SearchResult] = []
        var errors: [SearchResult.SearchError] = []
        for outcome in outcomes.sorted(by: { $0.node < $1.node }) {
            if let result = outcome.result {
                results.append(result)
            } else {
                let error = outcome.failure ?? "no answer"
                logger.warning("missed a node's result", metadata: ["search.node": "\(outcome.node)", "search.error": "\(error)"])
                errors.append(.init(
                    errorType: "BrokerGatherError",
                    message: "node \(outcome.node) did not answer (\(error)); partitions \(outcome.partitions) are missing from the result",
                    errorCode: 500))
            }
        }
        let unserved = (0..<partitionCount).filter { routing.view[$0]?.isEmpty ?? true }
        if !unserved.isEmpty {
            errors.append(.init(errorType: "PartitionCallError", message: "partitions \(unserved) have no live node", errorCode: 251))
        }
        let gathered = ContinuousClock.now
        var merged = ResultMerger.merge(results, request: request)
        merged.errors += errors
        if logger.logLevel <= .debug {
            let end = ContinuousClock.now
            logger.debug("search stages", metadata: [
                "search.route_us": "\(Self.microseconds(planned - started))",
                "search.gather_us": "\(Self.microseconds(gathered - planned))",
                "search.nodes_us": "\(outcomes.sorted { $0.node < $1.node }.map { "\($0.node):\(Self.microseconds($0.took))" }.joined(separator: ","))",
                "search.merge_us": "\(Self.microseconds(end - gathered))",
            ])
        }
        return merged
    }

    static func microseconds(_ duration: Duration) -> Int { Int(duration / .microseconds(1)) }

    /// One node's part of a search.
    struct NodeOutcome: Sendable {
        var node: Int
        var partitions: [Int]
        var result: SearchResult?
        var failure: String?
        /// From the request's encoding to its answer's decoding.
        var took: Duration = .zero

        /// What `search` gives for `partitions` of `node`: its result or its error, timed from
        /// `asked`.
        static func of(
            node: Int, partitions: [Int], askedAt asked: ContinuousClock.Instant, _ search: () async throws -> SearchResult
        ) async -> NodeOutcome {
            do {
                return NodeOutcome(node: node, partitions: partitions, result: try await search(), failure: nil, took: .now - asked)
            } catch {
                return NodeOutcome(node: node, partitions: partitions, result: nil, failure: "\(error)", took: .now - asked)
            }
        }
    }

    /// One request to a node's search port, decoded as `T`; abandoned (its connection closed) at
    /// `deadline`.
    func ask<T: Decodable>(address: String, path: String, body: Data?, deadline: NIODeadline) async throws -> T {
        let answer = try await send(address: address, path: path, body: body.map { ByteBuffer(bytes: $0) }, deadline: deadline).answer()
        return try JSONDecoder().decode(T.self, from: Data(answer.readableBytesView))
    }

    /// Sends one request to a node's search port now (a body as `contentType`);
    /// ``SentRequest/answer()`` awaits it.
    func send(address: String, path: String, body: ByteBuffer?, contentType: String = "application/json", deadline: NIODeadline) -> SentRequest {
        let attempt = client.request(
            peer: address, method: body == nil ? .GET : .POST, path: path, body: body, extraHeaders: body == nil ? [:] : ["Content-Type": contentType])
        let timer = attempt.answer.eventLoop.scheduleTask(deadline: deadline) { attempt.cancel() }
        // Stopped as soon as the node answers (its answer may be awaited much later, after the
        // other nodes' and the local search).
        attempt.answer.whenComplete { _ in timer.cancel() }
        return SentRequest(attempt: attempt, timer: timer, deadline: deadline, timeout: timeout)
    }

    /// A request on its way to a node, abandoned (its connection closed) at its deadline.
    struct SentRequest {
        let attempt: PendingAnswer<PeerClient.Answer>
        let timer: Scheduled<Void>
        let deadline: NIODeadline
        /// `sensei.broker.timeout`, for the error.
        let timeout: Duration

        /// The body of the node's 200 answer; cancelling the task abandons the request.
        func answer() async throws -> ByteBuffer {
            defer { timer.cancel() }
            let answer: PeerClient.Answer
            do {
                answer = try await withTaskCancellationHandler { try await attempt.answer.get() } onCancel: { [attempt] in attempt.cancel() }
            } catch where NIODeadline.now() >= deadline {
                throw RequestError("no answer within sensei.broker.timeout (\(timeout))")
            }
            guard answer.status == 200 else {
                throw RequestError("HTTP \(answer.status): \(String(buffer: answer.body))")
            }
            return answer.body
        }
    }

    /// `/sensei/sysinfo` merged over every live node: documents summed, cluster info listed.
    public func systemInfo() async -> (numdocs: Int, nodes: [NodeInfo]) {
        let addresses = routing().addresses
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let infos = await withTaskGroup(of: NodeInfo?.self) { group in
            for (_, address) in addresses {
                group.addTask { try? await self.ask(address: address, path: "/node/sysinfo", body: nil, deadline: deadline) }
            }
            var infos: [NodeInfo] = []
            for await info in group { if let info { infos.append(info) } }
            return infos.sorted { $0.id < $1.id }
        }
        return (infos.reduce(0) { $0 + $1.numdocs }, infos)
    }

    /// How many distinct documents the answering nodes hold: each partition counted once (its
    /// largest replica), where `numdocs` counts every replica, as Sensei's does.
    public static func distinctDocuments(_ nodes: [NodeInfo]) -> Int {
        var byPartition: [Int: Int] = [:]
        for node in nodes {
            for (partition, count) in node.numdocsByPartition { byPartition[partition] = max(byPartition[partition] ?? 0, count) }
        }
        return byPartition.values.reduce(0, +)
    }

    /// `/sensei/get`: the sources of `uids`, asked of one replica per partition.
    public func documents(uids: [String]) async -> [String: String] {
        let routing = routing()
        let nodes = Set(routing.router.plan(for: "get").keys)
        let body = (try? JSONEncoder().encode(uids)) ?? Data()
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        return await withTaskGroup(of: [String: String].self) { group in
            for node in nodes {
                guard let address = routing.addresses[node] else { continue }
                group.addTask { (try? await self.ask(address: address, path: "/node/get", body: body, deadline: deadline)) ?? [:] }
            }
            var found: [String: String] = [:]
            for await part in group { found.merge(part) { first, _ in first } }
            return found
        }
    }

    /// What a node says about itself (`/node/sysinfo`).
    public struct NodeInfo: Sendable, Hashable, Codable {
        public var id: Int
        public var partitions: [Int]
        public var numdocs: Int
        /// Partition → documents.
        public var numdocsByPartition: [Int: Int]
        public var address: String
        public var malformedLines: Int
        /// Partition → searches answered (to see which replica brokers pick).
        public var searchesByPartition: [Int: Int]
    }
}
