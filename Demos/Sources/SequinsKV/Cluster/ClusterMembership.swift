import DemoSupport
import Coordination
import Foundation
import Logging
import Synchronization
import ZooKeeper

/// This node's place in the sequins cluster, with sequins' ZooKeeper layout under
/// `/<cluster_name>/v1`: `nodes/<shardID>@<ip:port>` (ephemeral, one per live node),
/// `id_assignment_lock` (serialises joins and shard-id choice) and
/// `partitions/<db>/<version>/<%05d>@<ip:port>` (see ``VersionGate``).
///
/// Reads never wait for ZooKeeper: the peers and the partition holders are cached and only
/// replaced when ZooKeeper reports a change, so an outage leaves the last known map in place.
public final class ClusterMembership: Sendable {
    public let client: ZooKeeperClient
    /// `/<cluster_name>/v1`.
    public let root: String
    /// This node's `ip:port` as it appears in ZooKeeper.
    public let address: String
    public let logger: Logger
    private let nodes: MembershipWatcher
    private let state = Mutex(State())

    private struct State {
        var shardID: String?
        /// Peers (not this node): address → shard id.
        var peers: [String: String] = [:]
        var watcher: Task<Void, Never>?
        var flapWatcher: Task<Void, Never>?
    }

    /// Connects to ZooKeeper.
    /// - Throws: ``ClusterError`` naming the servers when ZooKeeper cannot be reached in time (a new
    ///   node refuses to start while ZooKeeper is down, as sequins does).
    public static func connect(configuration: SequinsConfiguration, address: String, logger: Logger) async throws -> ClusterMembership {
        // One pass over the servers, as sequins' client makes before it gives up (each server
        // `connect_timeout`), with two seconds at least for a handshake on a busy machine.
        let onePass = configuration.zk.connectTimeout * max(configuration.zk.servers.count, 1)
        let client = try await NodeZooKeeper.connected(
            connectString: configuration.zk.connectString, setting: "[zk] servers", sessionTimeout: configuration.zk.sessionTimeout,
            connectionTimeout: min(max(onePass, .seconds(2)), max(configuration.zk.sessionTimeout, .seconds(2))), logger: logger)
        let clusterName = configuration.sharding.clusterName
        let root = ZooKeeperPath.join(ZooKeeperPath.join("/", clusterName), "v1")
        let membership = ClusterMembership(client: client, root: root, address: address, logger: logger)
        do {
            // Both persistent, as sequins' client creates them: a lock's parent created on demand
            // is a container, which ZooKeeper deletes a minute after its last lock, so that every
            // later start would pay a failed create and a container's write first.
            async let nodes: Void = client.createPath(ZooKeeperPath.join(membership.root, "nodes"))
            async let lock: Void = client.createPath(membership.idAssignmentLockPath)
            _ = try await (nodes, lock)
        } catch {
            await client.close()
            throw ClusterError("cannot create \(membership.root)/nodes and \(membership.idAssignmentLockPath) in ZooKeeper: \(error)")
        }
        return membership
    }

    init(client: ZooKeeperClient, root: String, address: String, logger: Logger) {
        self.client = client
        self.root = root
        self.address = address
        self.logger = logger
        nodes = MembershipWatcher(client: client, group: ZooKeeperPath.join(root, "nodes"))
    }

    public var shardID: String? { state.withLock { $0.shardID } }

    /// `<root>/id_assignment_lock`: the lock a node holds while it claims its shard id.
    var idAssignmentLockPath: String { ZooKeeperPath.join(root, "id_assignment_lock") }

    /// `<root>/partitions`: sequins' version nodes, `<db>/<version>`, under it.
    public var versionsRoot: String { ZooKeeperPath.join(root, "partitions") }

    /// A version's node, `<root>/partitions/<db>/<version>`: a ``VersionGate``'s version path,
    /// with this node's `ip:port` as the holder.
    public func versionPath(database: String, version: String) -> String {
        ZooKeeperPath.join(ZooKeeperPath.join(versionsRoot, database), version)
    }

    /// The shard ids of every live node, this one included (the assigner's input).
    public var memberShardIDs: [String] {
        state.withLock { state in Array(state.peers.values) + (state.shardID.map { [$0] } ?? []) }
    }

    /// Peers' addresses → shard ids (cached).
    public var peers: [String: String] { state.withLock { $0.peers } }

    /// Joins the cluster as sequins does: under `id_assignment_lock`, takes `configured` (or the
    /// id in the local store, or the smallest free one after the member list has been quiet for
    /// `min(timeToConverge, 3s)`), registers `nodes/<id>@<address>`, releases the lock, and waits
    /// until the member list has not changed for `timeToConverge` (once that long when nothing
    /// changes, as sequins' `WaitToConverge`).
    ///
    /// A node restarted after a crash finds its previous process's registration until ZooKeeper
    /// expires that session. As sequins, it does not hold the lock while it waits for it to go
    /// (so a node restarting beside it is not held up too): the lock is released, then the
    /// registration waits. Its id stays taken meanwhile, by the old registration.
    /// - Parameter whileConverging: called once registered, as the wait for the member list begins.
    public func join(
        configuredShardID: String, store: LocalStore, timeToConverge: Duration, whileConverging: @Sendable () -> Void = {}
    ) async throws -> String {
        let nodes = self.nodes
        let address = self.address
        let existing = configuredShardID.isEmpty ? store.selfAssignedShardID() : configuredShardID
        let waitingFor = Mutex<String?>(nil)
        let (shardID, chosen) = try await ShardID.claim(
            client: client, lockPath: idAssignmentLockPath, membersPath: nodes.group,
            existing: existing, quietPeriod: min(timeToConverge, .seconds(3))
        ) { id in
            if existing == nil { try store.saveSelfAssignedShardID(id) }
            let memberID = "\(id)@\(address)"
            do {
                try await nodes.join(memberID: memberID)
            } catch let error as CoordinationError where error.code == .duplicateMember {
                waitingFor.withLock { $0 = memberID }  // an earlier session's: wait for it after the lock
            }
        }
        if let memberID = waitingFor.withLock({ $0 }) { try await register(memberID: memberID) }
        if chosen { logger.info("self-assigned a shard id", metadata: ["kv.shard_id": "\(shardID)"]) }
        state.withLock { $0.shardID = shardID }
        startWatchingPeers()
        whileConverging()
        let waitStarted = ContinuousClock.now
        let members = try await nodes.awaitStable(quietPeriod: timeToConverge)
        applyMembers(members)
        logger.info(
            "the member list converged",
            metadata: ["kv.members": "\(members.keys.sorted())", "kv.waited_ms": "\(Int((ContinuousClock.now - waitStarted) / .milliseconds(1)))"])
        return shardID
    }

    /// Registers `memberID`. A node restarted after a crash finds its previous process's
    /// registration (same id and address, another session) until ZooKeeper expires that session:
    /// it waits for it to go, up to twice its own session timeout, instead of refusing to start.
    private func register(memberID: String) async throws {
        let timeout = client.predecessorExpiryWait
        if let stat = try await client.exists(ZooKeeperPath.join(nodes.group, memberID)), stat.ephemeralOwner != client.state.session?.sessionID {
            logger.warning(
                "this node is still registered by an earlier session (a crashed process?); waiting for ZooKeeper to expire it",
                metadata: ["kv.member": "\(memberID)", "kv.wait": "\(timeout)"])
        }
        try await nodes.join(memberID: memberID, waitingForOtherSession: timeout)
    }

    private func startWatchingPeers() {
        let updates = nodes.members()
        let task = Task { [weak self] in
            do {
                for try await members in updates { self?.applyMembers(members) }
            } catch {}
        }
        state.withLock { $0.watcher = task }
    }

    private func applyMembers(_ members: [String: [UInt8]]) {
        var peers: [String: String] = [:]
        for name in members.keys {
            guard let at = name.firstIndex(of: "@") else { continue }
            let peerAddress = String(name[name.index(after: at)...])
            guard peerAddress != address else { continue }
            peers[peerAddress] = String(name[..<at])
        }
        let (lost, found) = state.withLock { state -> (Set<String>, Set<String>) in
            let before = Set(state.peers.keys)
            state.peers = peers
            return (before.subtracting(peers.keys), Set(peers.keys).subtracting(before))
        }
        for peer in lost.sorted() { logger.info("lost a peer", metadata: ["kv.peer": "\(peer)"]) }
        for peer in found.sorted() { logger.info("found a peer", metadata: ["kv.peer": "\(peer)"]) }
    }

    /// Watches the session for flapping: `threshold` lost connections within `window`
    /// calls `onFlapping` (sequins exits then: "Dying due to ZK flapping").
    public func watchForFlapping(threshold: Int = 5, window: Duration = .seconds(1200), onFlapping: @escaping @Sendable () -> Void) {
        let events = client.sessionEvents
        let logger = self.logger
        let task = Task {
            var detector = FlapDetector(threshold: threshold, window: window)
            for await event in events {
                if case .suspended = event {
                    logger.warning("lost the ZooKeeper connection; serving from the cached cluster state")
                    if detector.record(at: ContinuousClock.now) {
                        logger.critical("ZooKeeper is flapping: more than \(threshold) lost connections within \(window)")
                        onFlapping()
                        return
                    }
                }
                if case .newSession = event {
                    logger.warning("the ZooKeeper session expired; registering and advertising again on a new session")
                }
            }
        }
        state.withLock { $0.flapWatcher = task }
    }

    /// Leaves the cluster (deletes this node's ephemeral nodes) and closes the session.
    public func shutdown() async {
        let tasks = state.withLock { state in [state.watcher, state.flapWatcher] }
        for task in tasks { task?.cancel() }
        try? await nodes.leave()
        await client.close()
    }
}

/// Counts events in a sliding window: pure.
public struct FlapDetector: Sendable {
    public let threshold: Int
    public let window: Duration
    private var events: [ContinuousClock.Instant] = []

    public init(threshold: Int, window: Duration) {
        self.threshold = threshold
        self.window = window
    }

    /// Records an event; true once more than `threshold` events fall within `window` (sequins:
    /// more than 5 reconnects in 20 minutes, `flapCount > flapMax`).
    public mutating func record(at instant: ContinuousClock.Instant) -> Bool {
        events.append(instant)
        events.removeAll { instant - $0 > window }
        return events.count > threshold
    }
}

/// A node that cannot join or stay in the cluster.
public struct ClusterError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ZooKeeperClient {
    /// How long a restarted node waits for its crashed predecessor's ephemeral nodes (same id,
    /// another session) to expire: twice the session timeout (the negotiated one once connected).
    var predecessorExpiryWait: Duration { (state.session?.negotiatedTimeout ?? configuration.sessionTimeout) * 2 }
}
