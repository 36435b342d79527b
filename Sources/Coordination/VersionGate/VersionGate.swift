import Foundation
import Synchronization
import ZooKeeper

/// The min-replication gate of one version of one database, with sequins' ZooKeeper layout:
/// `<root>/partitions/<db>/<version>/<%05d partition>@<host:port>`, one ephemeral node per
/// partition a node holds.
///
/// - ``advertise(_:waitingForOtherSession:)`` publishes what this node holds as it finishes loading; the advertisements
///   are published again on every new session (owner-checked, like members), and never after
///   ``unadvertiseAll()``.
/// - ``replication()`` streams the holders of every partition; ``awaitReady(minReplication:)``
///   returns once every partition has at least `minReplication` holders, and latches.
/// - ``removeEmptyVersions(client:root:olderThan:)`` deletes empty persistent version nodes old
///   enough (sequins' one-hour guard), never an ephemeral.
public final class VersionGate: Sendable {
    public let client: ZooKeeperClient
    public let database: String
    public let version: String
    public let partitionCount: Int
    /// This node's `host:port`, as in its advertisements.
    public let address: String
    /// `<root>/partitions/<db>/<version>`.
    public let versionPath: String

    private struct State {
        var advertised: [Int: MembershipWatcher] = [:]
        var ready = false
    }
    private let state = Mutex(State())

    /// - Parameter root: the cluster's root, for sequins `/<cluster_name>/v1`.
    public init(client: ZooKeeperClient, root: String, database: String, version: String, partitionCount: Int, address: String) {
        self.client = client
        self.database = database
        self.version = version
        self.partitionCount = partitionCount
        self.address = address
        versionPath = ZooKeeperPath.join(ZooKeeperPath.join(ZooKeeperPath.join(root, "partitions"), database), version)
    }

    /// Advertises that this node holds `partitions` of this version (idempotent per partition).
    /// An advertisement another session still holds (this address's previous process, crashed)
    /// is waited out for `waitingForOtherSession` (see ``MembershipWatcher/join(memberID:payload:waitingForOtherSession:)``).
    /// - Throws: ``CoordinationError/Code/duplicateMember`` when another live session advertises
    ///   the same partition with the same address; ``ZooKeeperError``.
    public func advertise(_ partitions: some Sequence<Int>, waitingForOtherSession: Duration = .zero) async throws {
        for partition in partitions {
            precondition(partition >= 0 && partition < partitionCount, "partition \(partition) is out of range 0..<\(partitionCount)")
            let watcher = state.withLock { state -> MembershipWatcher? in
                guard state.advertised[partition] == nil else { return nil }
                let watcher = MembershipWatcher(client: client, group: versionPath)
                state.advertised[partition] = watcher
                return watcher
            }
            guard let watcher else { continue }
            do {
                try await watcher.join(
                    memberID: PartitionReplication.advertisementName(partition: partition, address: address), waitingForOtherSession: waitingForOtherSession)
            } catch {
                _ = state.withLock { $0.advertised.removeValue(forKey: partition) }
                throw error
            }
        }
    }

    /// The partitions this node advertises.
    public var advertisedPartitions: [Int] { state.withLock { $0.advertised.keys.sorted() } }

    /// Withdraws this node's advertisements (it no longer serves the version).
    public func unadvertiseAll() async throws {
        let watchers = state.withLock { state -> [MembershipWatcher] in
            defer { state.advertised.removeAll() }
            return Array(state.advertised.values)
        }
        for watcher in watchers { try await watcher.leave() }
    }

    /// The holders of every partition, re-read after every change of the advertisements and after
    /// reconnects and new sessions.
    public func replication() -> ReplicationUpdates {
        ReplicationUpdates(children: client.childrenUpdates(versionPath), partitionCount: partitionCount)
    }

    /// Whether the gate has opened (it stays open).
    public var isReady: Bool { state.withLock { $0.ready } }

    /// Waits until every partition has at least `minReplication` holders, then latches (later
    /// calls return at once). Cancellable through task cancellation.
    @discardableResult
    public func awaitReady(minReplication: Int) async throws -> PartitionReplication {
        if isReady { return try await currentReplication() }
        for try await replication in replication() where replication.isReady(minReplication: minReplication) {
            state.withLock { $0.ready = true }
            return replication
        }
        try Task.checkCancellation()
        throw ZooKeeperError(.closed, path: versionPath, message: "the client closed before the version was ready")
    }

    /// The holders now, read once.
    public func currentReplication() async throws -> PartitionReplication {
        do {
            return PartitionReplication(advertisements: try await client.getChildren(versionPath).names, partitionCount: partitionCount)
        } catch let error as ZooKeeperError where error.code == .noNode {
            return PartitionReplication(advertisements: [], partitionCount: partitionCount)
        }
    }

    /// For each partition, how many *other* nodes advertise it now (the `remoteHolders` input of
    /// ``StaticPartitionAssigner/partitions(for:members:maxReplication:remoteHolders:)``).
    public func remoteHolders() async throws -> [Int: Int] {
        try await currentReplication().remoteCounts(excluding: address)
    }

    /// Deletes persistent, childless nodes under `<root>/partitions` (version nodes, then database
    /// nodes) created more than `olderThan` ago; never an ephemeral node, never a node with children.
    /// - Returns: the paths deleted.
    @discardableResult
    public static func removeEmptyVersions(client: ZooKeeperClient, root: String, olderThan guardTime: Duration = .seconds(3600)) async throws -> [String] {
        let partitions = ZooKeeperPath.join(root, "partitions")
        let nowMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        let cutoff = nowMilliseconds - guardTime.milliseconds
        var removed: [String] = []
        func removeIfEmptyAndOld(_ path: String) async throws -> Bool {
            guard let stat = try await client.exists(path) else { return true }
            guard stat.ephemeralOwner == 0, stat.numChildren == 0, stat.ctime <= cutoff else { return false }
            do {
                try await client.delete(path, version: stat.version)
                removed.append(path)
                return true
            } catch let error as ZooKeeperError where error.code == .notEmpty || error.code == .badVersion || error.code == .noNode {
                return error.code == .noNode
            }
        }
        let databases: [String]
        do { databases = try await client.getChildren(partitions).names } catch let error as ZooKeeperError where error.code == .noNode {
            return []
        }
        for database in databases.sorted() {
            let databasePath = ZooKeeperPath.join(partitions, database)
            let versions = (try? await client.getChildren(databasePath).names) ?? []
            for version in versions.sorted() {
                _ = try await removeIfEmptyAndOld(ZooKeeperPath.join(databasePath, version))
            }
            _ = try await removeIfEmptyAndOld(databasePath)
        }
        return removed
    }
}

/// The holders of a version's partitions over time (see ``VersionGate/replication()``).
public struct ReplicationUpdates: AsyncSequence, Sendable {
    public typealias Element = PartitionReplication
    let children: ChildrenUpdates
    let partitionCount: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: ChildrenUpdates.AsyncIterator
        let partitionCount: Int

        public mutating func next() async throws -> PartitionReplication? {
            guard let update = try await base.next() else { return nil }
            switch update {
            case .children(let children): return PartitionReplication(advertisements: children.names, partitionCount: partitionCount)
            case .noNode: return PartitionReplication(advertisements: [], partitionCount: partitionCount)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: children.makeAsyncIterator(), partitionCount: partitionCount)
    }
}
