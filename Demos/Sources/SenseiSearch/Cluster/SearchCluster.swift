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
/// publishes every partition it serves through the library's ``MembershipWatcher`` (sequential
/// names), which publishes them again on every new session; leaving (or dying) removes them.
/// Brokers watch the group and keep the inverse map partition → live nodes.
public final class SearchCluster: Sendable {
    public let client: ZooKeeperClient
    /// `/<sensei.cluster.name>`.
    public let group: String
    let logger: Logger
    private let state = Mutex(State())

    private struct State {
        /// One membership per partition this node serves.
        var memberships: [MembershipWatcher] = []
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

    /// Publishes one `member_<seq>` per partition, and keeps them published (on every new session
    /// too) until ``leave()``.
    public func register(nodeID: Int, host: String, port: Int, partitions: [Int]) async throws {
        let memberships = partitions.map { _ in MembershipWatcher(client: client, group: group) }
        state.withLock { $0.memberships += memberships }
        for (partition, membership) in zip(partitions, memberships) {
            let endpoint = SearchEndpoint(host: host, port: port, shard: partition, nodeId: nodeID)
            let name = try await membership.join(sequentialPrefix: Self.memberPrefix, payload: Array(try JSONEncoder().encode(endpoint)))
            logger.info("registered a partition", metadata: ["search.partition": "\(partition)", "search.member": "\(name)"])
        }
    }

    /// Removes this node's members (Sensei's `setAvailable(false)`).
    public func leave() async {
        let memberships = state.withLock { state in
            defer { state.memberships = [] }
            return state.memberships
        }
        for membership in memberships { try? await membership.leave() }
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
                // The stream resyncs by itself after reconnects and new sessions; it ends on
                // close(), or on an error waiting cannot mend (then it is started again).
                while !Task.isCancelled {
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
                        return
                    } catch let error as ZooKeeperError where error.code == .closed {
                        return
                    } catch is CancellationError {
                        return
                    } catch {
                        logger.warning("cannot follow the cluster; trying again", metadata: ["search.error": "\(error)"])
                        try? await Task.sleep(for: .seconds(1))
                    }
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
