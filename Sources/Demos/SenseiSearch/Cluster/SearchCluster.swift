import Coordination
import Foundation
import Logging
import Synchronization
import ZooKeeper

/// One (node, partition) membership, as each `member_` znode carries it.
public struct SearchEndpoint: Sendable, Hashable, Codable {
    public var host: String
    public var port: Int
    public var shard: Int
    public var nodeId: Int

    public init(host: String, port: Int, shard: Int, nodeId: Int) {
        self.host = host
        self.port = port
        self.shard = shard
        self.nodeId = nodeId
    }

    public var address: String { "\(host):\(port)" }
}

/// A live node in the broker's view.
public struct SearchNodeAddress: Sendable, Hashable {
    public var nodeId: Int
    public var address: String
}

/// Sensei's ZooKeeper layout (Zu era): under `/<sensei.cluster.name>`, one ephemeral sequential
/// `member_<seq>` per (node, partition), carrying `{host, port, shard, nodeId}` as JSON. A node
/// registers every partition it serves and keeps them registered across new sessions; leaving (or
/// dying) removes them. Brokers watch the group and keep the inverse map partition → live nodes.
public final class SearchCluster: Sendable {
    public let client: ZooKeeperClient
    /// `/<sensei.cluster.name>`.
    public let group: String
    let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var desired: [SearchEndpoint] = []
        var left = false
        var keeper: Task<Void, Never>?
        var view: [Int: [SearchNodeAddress]] = [:]
        var viewWatcher: Task<Void, Never>?
    }

    public init(client: ZooKeeperClient, clusterName: String, logger: Logger) {
        self.client = client
        group = "/" + clusterName
        self.logger = logger
    }

    public static let memberPrefix = "member_"

    // MARK: Registering this node

    /// Registers one member per partition and keeps them registered (after a new session too).
    public func register(nodeID: Int, host: String, port: Int, partitions: [Int]) async throws {
        state.withLock { $0.desired = partitions.map { SearchEndpoint(host: host, port: port, shard: $0, nodeId: nodeID) } }
        try await client.createPath(group)
        try await reconcile()
        let events = client.sessionEvents
        let keeper = Task { [weak self] in
            for await event in events {
                guard let self else { return }
                switch event {
                case .connected, .newSession:
                    do { try await self.reconcile() } catch {
                        self.logger.warning("cannot register the partitions again yet", metadata: ["search.error": "\(error)"])
                    }
                case .closed: return
                default: break
                }
            }
        }
        state.withLock { $0.keeper = keeper }
    }

    /// Makes ZooKeeper hold exactly one member of this session per desired partition: adopts the
    /// ones it has (a create that lost its reply may have succeeded), creates the missing ones,
    /// deletes duplicates.
    func reconcile() async throws {
        let (desired, left) = state.withLock { ($0.desired, $0.left) }
        guard !left, !desired.isEmpty, let session = client.state.session?.sessionID else { return }
        var ours: [Int: [String]] = [:]
        for name in try await client.getChildren(group).names where name.hasPrefix(Self.memberPrefix) {
            guard let node = try? await client.getData(group + "/" + name), node.stat.ephemeralOwner == session,
                let endpoint = try? JSONDecoder().decode(SearchEndpoint.self, from: Data(node.bytes))
            else { continue }
            ours[endpoint.shard, default: []].append(name)
        }
        for endpoint in desired {
            var names = ours[endpoint.shard] ?? []
            if names.isEmpty {
                // A leave() that came meanwhile wins (it is not serialised with this pass).
                if state.withLock({ $0.left }) { return }
                let data = try JSONEncoder().encode(endpoint)
                try await client.create(group + "/" + Self.memberPrefix, data: Array(data), mode: .ephemeralSequential)
                logger.info("registered a partition", metadata: ["search.partition": "\(endpoint.shard)"])
            }
            while names.count > 1 { try? await client.delete(group + "/" + names.removeLast()) }
        }
    }

    /// Removes this node's members (Sensei's `setAvailable(false)`).
    public func leave() async {
        let keeper = state.withLock { state -> Task<Void, Never>? in
            state.left = true
            defer { state.keeper = nil }
            return state.keeper
        }
        keeper?.cancel()
        guard let session = client.state.session?.sessionID, let names = try? await client.getChildren(group).names else { return }
        for name in names where name.hasPrefix(Self.memberPrefix) {
            if let stat = try? await client.exists(group + "/" + name), stat.ephemeralOwner == session {
                try? await client.delete(group + "/" + name)
            }
        }
    }

    // MARK: Watching the cluster (brokers)

    /// The current partition → live nodes map.
    public var view: [Int: [SearchNodeAddress]] { state.withLock { $0.view } }

    /// Starts following the group (once) with the library's membership stream (snapshots of
    /// every member's data, re-read after reconnects); the view is replaced on every change.
    public func watch() {
        let snapshots = MembershipWatcher(client: client, group: group).members()
        let logger = self.logger
        state.withLock { state in
            guard state.viewWatcher == nil else { return }
            state.viewWatcher = Task { [weak self] in
                do {
                    for try await members in snapshots {
                        guard let self else { return }
                        var endpoints: [SearchEndpoint] = []
                        for (name, data) in members where name.hasPrefix(Self.memberPrefix) {
                            guard let endpoint = try? JSONDecoder().decode(SearchEndpoint.self, from: Data(data)) else {
                                logger.warning("a member's data is not {host, port, shard, nodeId}", metadata: ["search.member": "\(name)"])
                                continue
                            }
                            endpoints.append(endpoint)
                        }
                        let view = Self.view(of: endpoints)
                        self.state.withLock { $0.view = view }
                    }
                } catch {
                    logger.debug("stopped watching the cluster", metadata: ["search.error": "\(error)"])
                }
            }
        }
    }

    /// partition → its live nodes (each once, ordered by node id).
    public static func view(of endpoints: [SearchEndpoint]) -> [Int: [SearchNodeAddress]] {
        var view: [Int: Set<SearchNodeAddress>] = [:]
        for endpoint in endpoints { view[endpoint.shard, default: []].insert(SearchNodeAddress(nodeId: endpoint.nodeId, address: endpoint.address)) }
        return view.mapValues { $0.sorted { $0.nodeId < $1.nodeId } }
    }

    public func stopWatching() {
        let task = state.withLock { state in
            defer { state.viewWatcher = nil }
            return state.viewWatcher
        }
        task?.cancel()
    }
}
