import DemoSupport
@_spi(Concurrency) import Coordination
import Foundation
import Logging
import NIOCore
import Synchronization
import ZooKeeper

/// One version of one database on this node: which partitions it selected, its local data once
/// built, and (in a cluster) its advertisements and the cached holders of every partition.
public final class Version: Sendable {
    public enum State: String, Sendable, Codable {
        case building = "BUILDING", active = "ACTIVE", removing = "REMOVING", error = "ERROR"
    }

    public let database: String
    public let name: String
    public let files: [String]
    public let partitionCount: Int
    public let selected: Set<Int>
    public let sourcePath: String
    let gate: VersionGate?
    /// This node's address in ZooKeeper (nil outside a cluster).
    var address: String? { gate?.holder }

    private struct Mutable {
        var state: State = .building
        var data: VersionData?
        var createdAt = Date()
        var activeAt: Date?
        /// Partition → addresses of the *other* nodes advertising it.
        var holders: [Int: [String]] = [:]
        /// The advertisements last reported and the gate's threshold (nil before the first report).
        var replication: (advertised: PartitionReplication, minReplication: Int)?
        var tasks: [Task<Void, Never>] = []
        var building = false
        /// Partitions being built again after damage.
        var repairing: Set<Int> = []
        var closed = false
    }
    private let mutable: Mutex<Mutable>
    /// true once ready; false when closed first.
    private let readiness = Latch<Bool>()

    init(database: String, name: String, files: [String], selected: Set<Int>, sourcePath: String, gate: VersionGate?) {
        self.database = database
        self.name = name
        self.files = files
        partitionCount = files.count
        self.selected = selected
        self.sourcePath = sourcePath
        self.gate = gate
        mutable = Mutex(Mutable())
    }

    public var state: State { mutable.withLock { $0.state } }
    public var data: VersionData? { mutable.withLock { $0.data } }
    public var createdAt: Date { mutable.withLock { $0.data?.createdAt ?? $0.createdAt } }
    /// ``createdAt`` as the `Last-Modified` header says it.
    public var lastModified: String { data?.lastModified ?? HTTPDate.format(createdAt) }
    public var activeAt: Date? { mutable.withLock { $0.activeAt } }
    public var isReady: Bool { readiness.value == true }

    /// The other nodes that advertised `partition`, in random order.
    public func peers(holding partition: Int) -> [String] {
        mutable.withLock { $0.holders[partition] ?? [] }.shuffled()
    }

    /// Marks the version as used now (resets its removal timer).
    func touch() { lastUse.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed) }
    /// How long since the version was last used (``touch()``).
    var idleTime: Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds &- lastUse.load(ordering: .relaxed))) }
    /// When it was last used, in `NIODeadline` uptime nanoseconds (an atomic: every request touches it).
    private let lastUse = Atomic<UInt64>(NIODeadline.now().uptimeNanoseconds)

    func setState(_ state: State) {
        mutable.withLock { mutable in
            if state == .active { mutable.activeAt = Date() }
            if mutable.state != .error || state == .removing { mutable.state = state }
        }
    }

    func adopt(_ task: Task<Void, Never>) {
        let closed = mutable.withLock { mutable in
            if !mutable.closed { mutable.tasks.append(task) }
            return mutable.closed
        }
        if closed { task.cancel() }
    }

    /// Installs data built here or read back from the local store. Without a cluster the version
    /// is then ready (min_replication is effectively 1); in one, its partitions count as held here
    /// from now on, before their advertisements are written, as sequins counts local partitions.
    func install(_ data: VersionData) {
        let ready = mutable.withLock { mutable in
            mutable.data = data
            mutable.building = false
            if mutable.state == .error { mutable.state = .building }
            return gate == nil || hasEnoughHolders(mutable)
        }
        if ready { readiness.set(true) }
    }

    /// Claims the build (false if one is running or done).
    func beginBuild() -> Bool {
        mutable.withLock { mutable in
            guard !mutable.building, mutable.data == nil, !mutable.closed else { return false }
            mutable.building = true
            if mutable.state == .error { mutable.state = .building }
            return true
        }
    }

    /// Claims the rebuild of a damaged partition (false if one is running, or the version is
    /// closed or has no data).
    func beginRepair(_ partition: Int) -> Bool {
        mutable.withLock { mutable in
            guard !mutable.closed, mutable.data?.holds(partition) == true else { return false }
            return mutable.repairing.insert(partition).inserted
        }
    }

    /// Ends a partition's rebuild, serving `file` in place of the damaged one when it succeeded.
    func endRepair(_ partition: Int, with file: PartitionFile?) {
        mutable.withLock { mutable in
            mutable.repairing.remove(partition)
            if let file, let data = mutable.data { mutable.data = data.replacing(partition, with: file) }
        }
    }

    func buildFailed() {
        mutable.withLock { mutable in
            mutable.building = false
            mutable.state = .error
        }
    }

    /// Takes in the version's advertisements as the gate reports them; opens once every
    /// partition has at least `minReplication` holders: the other nodes advertising it, and this
    /// node once it holds the partition's data (its own advertisements are not waited for).
    func apply(_ replication: PartitionReplication, minReplication: Int) {
        let holders = replication.holders(excluding: address)
        let ready = mutable.withLock { mutable in
            mutable.holders = holders
            mutable.replication = (replication, minReplication)
            return hasEnoughHolders(mutable)
        }
        if ready { readiness.set(true) }
    }

    /// Whether every partition has enough holders, counting this node for what its data holds.
    private func hasEnoughHolders(_ mutable: Mutable) -> Bool {
        guard let (advertised, minReplication) = mutable.replication, let address else { return false }
        let held = mutable.data.map { data in selected.filter(data.holds) } ?? []
        return advertised.counting(held, heldBy: address).isReady(minReplication: minReplication)
    }

    /// Returns once the version is ready (latched), or when it is closed.
    func waitUntilReady() async {
        _ = await readiness.wait()
    }

    /// Stops every task of the version and withdraws its advertisements.
    func close() async {
        let tasks = mutable.withLock { mutable in
            mutable.closed = true
            defer { mutable.tasks = [] }
            return mutable.tasks
        }
        readiness.set(false)
        // (Often from one of the tasks just cancelled, its removal timer or an upgrade's wait:
        // withdrawing an advertisement is cleanup, sent even from a cancelled task.)
        for task in tasks { task.cancel() }
        try? await gate?.unadvertiseAll()
    }
}
