import Foundation
import Synchronization
import ZooKeeper

/// A min-replication gate for one version of a partitioned dataset: every member advertises the
/// partitions of the version it has loaded, and nobody serves the version before each partition
/// has at least `minReplication` holders.
///
/// The version's node (``versionPath``) holds one ephemeral child per partition and holder,
/// named as ``PartitionAdvertisement`` says: `<partition, 5 digits>@<holder>`.
/// - ``advertise(_:waitingForOtherSession:)`` publishes what this member holds as it finishes
///   loading; the advertisements are published again on every new session (owner-checked, like
///   members), and never after ``unadvertiseAll()``.
/// - ``replication()`` streams the holders of every partition; ``awaitReady(minReplication:)``
///   returns once every partition has at least `minReplication` holders, and latches.
/// - ``removeEmptyVersions(client:under:olderThan:)`` deletes empty persistent version nodes old
///   enough (one hour by default), never an ephemeral.
///
/// sequins' layout is one configuration of it: the version path is
/// `/<cluster_name>/v1/partitions/<db>/<version>` and the holder is the node's `host:port`.
///
/// ```swift
/// let gate = VersionGate(client: client, versionPath: "/search/v1/partitions/catalog/20261121",
///                        partitionCount: 16, holder: "10.0.0.5:9599")
/// try await gate.advertise([3, 11])               // as soon as they are loaded
/// try await gate.awaitReady(minReplication: 2)    // then switch to the version
/// ```
public final class VersionGate: Sendable {
    /// The client the gate reads and advertises with.
    public let client: ZooKeeperClient
    /// The version's node: advertisements are its children.
    public let versionPath: String
    /// How many partitions the version has (numbered from 0).
    public let partitionCount: Int
    /// This member, as its advertisements name it.
    public let holder: String

    private struct State {
        var advertised: [Int: MembershipWatcher] = [:]
        var ready = false
        /// The replication the gate opened at (a later wait for more does not pass on the latch).
        var openedAt = 0
    }
    private let state = Mutex(State())

    /// A gate on the version at `versionPath`, whose advertisements by this member name `holder`.
    /// Nothing is read or written until it is used.
    public init(client: ZooKeeperClient, versionPath: String, partitionCount: Int, holder: String) {
        self.client = client
        self.versionPath = versionPath
        self.partitionCount = partitionCount
        self.holder = holder
    }

    /// Advertises that this member holds `partitions` of this version (idempotent per partition).
    /// An advertisement another session still holds (this holder's previous process, crashed)
    /// is waited out for `waitingForOtherSession` (see ``MembershipWatcher/join(memberID:payload:waitingForOtherSession:)``).
    /// - Throws: ``CoordinationError/Code/invalidArgument`` for a partition out of range (nothing
    ///   is advertised then); ``CoordinationError/Code/duplicateMember`` when another live session
    ///   advertises the same partition with the same holder; `ZooKeeperError`. The partitions are
    ///   written concurrently: when some fail, the others stay advertised, and the error is that of
    ///   the lowest failed partition.
    public func advertise(_ partitions: some Sequence<Int>, waitingForOtherSession: Duration = .zero) async throws {
        let partitions = Array(partitions)
        if let wrong = partitions.first(where: { $0 < 0 || $0 >= partitionCount }) {
            throw CoordinationError(.invalidArgument, path: versionPath, message: "partition \(wrong) is out of range 0..<\(partitionCount)")
        }
        // One advertisement per partition, all in flight at once: a node holding many partitions
        // waits one round trip (or one predecessor's expiry), not one per partition.
        let joining = state.withLock { state -> [(Int, MembershipWatcher)] in
            partitions.compactMap { partition in
                guard state.advertised[partition] == nil else { return nil }
                let watcher = MembershipWatcher(client: client, group: versionPath)
                state.advertised[partition] = watcher
                return (partition, watcher)
            }
        }
        let holder = self.holder
        let failures = await withTaskGroup(of: (Int, (any Error)?).self) { group in
            var pending = joining.makeIterator()
            func addNext() -> Bool {
                guard let (partition, watcher) = pending.next() else { return false }
                group.addTask {
                    do {
                        try await watcher.join(
                            memberID: PartitionAdvertisement(partition: partition, holder: holder).name, waitingForOtherSession: waitingForOtherSession)
                        return (partition, nil)
                    } catch {
                        return (partition, error)
                    }
                }
                return true
            }
            for _ in 0..<Self.advertisementsInFlight where !addNext() { break }
            var failures: [(Int, any Error)] = []
            while let (partition, error) = await group.next() {
                if let error { failures.append((partition, error)) }
                _ = addNext()
            }
            return failures.sorted { $0.0 < $1.0 }
        }
        guard let first = failures.first else { return }
        state.withLock { state in
            for (partition, _) in failures { state.advertised.removeValue(forKey: partition) }
        }
        throw first.1
    }

    /// How many advertisements are written at once.
    static let advertisementsInFlight = 64

    /// The partitions this member advertises.
    public var advertisedPartitions: [Int] { state.withLock { $0.advertised.keys.sorted() } }

    /// Withdraws this member's advertisements (it no longer serves the version): every one of
    /// them, even when one fails (the first failure is thrown after the others were withdrawn).
    public func unadvertiseAll() async throws {
        let watchers = state.withLock { state -> [MembershipWatcher] in
            defer { state.advertised.removeAll() }
            return Array(state.advertised.values)
        }
        var failure: (any Error)?
        for watcher in watchers {
            do { try await watcher.leave() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    /// The holders of every partition, re-read after every change of the advertisements and after
    /// reconnects and new sessions.
    public func replication() -> ReplicationUpdates {
        ReplicationUpdates(children: client.childrenUpdates(versionPath), partitionCount: partitionCount)
    }

    /// Whether the gate has opened (it stays open).
    public var isReady: Bool { state.withLock { $0.ready } }

    /// Waits until every partition has at least `minReplication` holders, then latches: later
    /// calls for the same or a lower `minReplication` return at once (a holder leaving does not
    /// close the gate again); a call for more waits for it. Cancellable through task cancellation.
    @discardableResult
    public func awaitReady(minReplication: Int) async throws -> PartitionReplication {
        if state.withLock({ $0.ready && minReplication <= $0.openedAt }) { return try await currentReplication() }
        for try await replication in replication() where replication.isReady(minReplication: minReplication) {
            state.withLock { state in
                state.ready = true
                state.openedAt = max(state.openedAt, minReplication)
            }
            return replication
        }
        try Task.checkCancellation()
        throw ZooKeeperError(.closed, path: versionPath, message: "the client closed before the version was ready")
    }

    /// The holders now, read once.
    public func currentReplication() async throws -> PartitionReplication {
        PartitionReplication(advertisements: try await client.childrenIfExists(versionPath), partitionCount: partitionCount)
    }

    /// For each partition, how many *other* members advertise it now (the `remoteHolders` input of
    /// ``StaticPartitionAssigner/partitions(for:members:maxReplication:remoteHolders:)``).
    public func remoteHolders() async throws -> [Int: Int] {
        try await currentReplication().remoteCounts(excluding: holder)
    }

    /// Deletes the version nodes under `versionsRoot` that nobody advertises any more, laid out as
    /// `<versionsRoot>/<dataset>/<version>`: persistent, childless version nodes created more than
    /// `olderThan` ago, then dataset nodes left empty and old enough; never an ephemeral node,
    /// never a node with children. (For sequins, `versionsRoot` is `/<cluster_name>/v1/partitions`.)
    /// - Returns: the paths deleted.
    @discardableResult
    public static func removeEmptyVersions(
        client: ZooKeeperClient, under versionsRoot: String, olderThan guardTime: Duration = .seconds(3600)
    ) async throws -> [String] {
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
        for dataset in try await client.childrenIfExists(versionsRoot).sorted() {
            let datasetPath = ZooKeeperPath.join(versionsRoot, dataset)
            let versions = try await client.childrenIfExists(datasetPath)
            for version in versions.sorted() {
                _ = try await removeIfEmptyAndOld(ZooKeeperPath.join(datasetPath, version))
            }
            _ = try await removeIfEmptyAndOld(datasetPath)
        }
        return removed
    }
}

/// The holders of a version's partitions over time (see ``VersionGate/replication()``).
public struct ReplicationUpdates: AsyncSequence, Sendable {
    public typealias Element = PartitionReplication
    public typealias Failure = any Error
    let children: ChildrenUpdates
    let partitionCount: Int

    /// Iterates the replication snapshots; each iterator follows the version on its own.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: ChildrenUpdates.AsyncIterator
        let partitionCount: Int

        /// The next snapshot; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> PartitionReplication? {
            try await next(isolation: nil)
        }

        /// The next snapshot, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> PartitionReplication? {
            guard let update = try await base.next(isolation: actor) else { return nil }
            switch update {
            case .children(let children): return PartitionReplication(advertisements: children.names, partitionCount: partitionCount)
            case .noNode: return PartitionReplication(advertisements: [], partitionCount: partitionCount)
            }
        }
    }

    /// Starts following the version's advertisements.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: children.makeAsyncIterator(), partitionCount: partitionCount)
    }
}
