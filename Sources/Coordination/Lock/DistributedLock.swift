import Synchronization
import ZooKeeper

/// A distributed lock on a ZooKeeper path: exclusive (a mutex), or ``Kind/read`` / ``Kind/write``
/// for a read/write lock. Its nodes are named and ordered as Apache Curator's
/// `InterProcessMutex` and `InterProcessReadWriteLock` name and order theirs, so Swift and Java
/// processes can share one lock. A counting semaphore is a
/// ``DistributedSemaphore``.
///
/// - No herd effect: each waiter watches only the node ahead of it (with `getData`, so no stray
///   creation watch is left).
/// - Safe creates: node names carry a GUID; after a lost create reply the node is found again and
///   adopted only if the current session owns it.
/// - Owner check: a holder is declared only after checking `ephemeralOwner == current session`.
/// - Cancelled or failed attempts always delete their node, in a task of their own, retried until
///   the node or its session is gone.
/// - Loss is a signal: ``LockLease/waitUntilLost()`` resolves (and ``withLock(timeout:_:)``
///   cancels its body) when the lease is no longer safe to assume, as ``LossPolicy`` says.
///
/// ```swift
/// let lock = DistributedLock(client: client, path: "/locks/orders")
/// try await lock.withLock(timeout: .seconds(5)) { lease in
///     try await lease.fencedMulti([.setData(path: "/orders/next", data: next)])
/// }
/// ```
public final class DistributedLock: Sendable {
    /// How a lock behaves.
    public struct Configuration: Sendable {
        /// When a holder must consider the lock lost. Default: ``LossPolicy/onPresumedExpired``.
        public var lossPolicy: LossPolicy = .onPresumedExpired
        /// The ACL of the lock's node and of the contenders' nodes. Default: open to anyone
        /// (`world:anyone`); a digest ACL keeps clients without its credentials out.
        public var acl: [ACL] = ACL.openUnsafe
        /// The defaults: lost when the session is presumed expired; open ACL.
        public init() {}
    }

    /// What a holder shares with other holders.
    public enum Kind: Sendable, Hashable, CaseIterable {
        /// Exclusive: one holder (Curator's `InterProcessMutex`; nodes `…-lock-<seq>`).
        case exclusive
        /// The read side of a read/write lock: shared with other readers, excluded by writers
        /// (Curator's `InterProcessReadWriteLock.readLock()`; nodes `…-__READ__<seq>`).
        case read
        /// The write side of a read/write lock: excludes readers and writers
        /// (`InterProcessReadWriteLock.writeLock()`; nodes `…-__WRIT__<seq>`).
        case write
    }

    /// The client the lock uses.
    public let client: ZooKeeperClient
    /// The lock's node; contenders are its children. It is created as a container node.
    public let path: String
    /// What a holder shares with other holders.
    public let kind: Kind
    /// How the lock behaves.
    public let configuration: Configuration

    /// A mutex (`kind: .exclusive`), or the read or the write side of a read/write lock on `path`.
    public init(client: ZooKeeperClient, path: String, kind: Kind = .exclusive, configuration: Configuration = Configuration()) {
        self.client = client
        self.path = path
        self.kind = kind
        self.configuration = configuration
    }

    var contender: QueueContender {
        QueueContender(client: client, parent: path, lockName: kind.lockName, maxHolders: 1, acl: configuration.acl)
    }

    /// The leases held by the current task (and the tasks it started inside ``withLock(timeout:_:)``),
    /// by lock: what makes `withLock` re-entrant.
    @TaskLocal static var leasesOfThisTask: [ObjectIdentifier: LockLease] = [:]

    /// Waits until the lock is held.
    /// - Parameter timeout: give up after this long (`nil`: wait as long as it takes).
    /// - Throws: ``CoordinationError/Code/timedOut``, `CancellationError`, `ZooKeeperError` (for
    ///   example `.closed`). In every case our node is deleted before this returns.
    public func acquire(timeout: Duration? = nil) async throws -> LockLease {
        try await recipeSpan("lock.acquire", path: path) {
            let node = try await contender.acquire(data: [], deadline: timeout.map { ContinuousClock.now + $0 })
            return LockLease(lock: self, node: node)
        }
    }

    /// Takes the lock only if it is free right now; `nil` otherwise (no node is left behind).
    /// While the client is disconnected, whether the lock is free cannot be known: it waits for
    /// the connection at most the session timeout.
    /// - Throws: ``CoordinationError/Code/timedOut`` when the client is not connected within the
    ///   session timeout (before or during the attempt); `ZooKeeperError`.
    public func tryAcquire() async throws -> LockLease? {
        try ZooKeeperPath.validate(path)
        let contender = self.contender
        let deadline = ContinuousClock.now + (client.state.session?.negotiatedTimeout ?? client.configuration.sessionTimeout)
        let (node, children) = try await contender.enqueue(data: [], deadline: deadline)
        do {
            let names: [String]
            if let children { names = children } else { names = try await client.getChildren(path).names }
            guard LockQueue.decide(children: names, ours: node.name) == .acquired else {
                await contender.remove(path: node.path, owner: node.sessionID)
                return nil
            }
            try await contender.awaitTurn(node, children: names, deadline: nil)
            return LockLease(lock: self, node: node)
        } catch {
            await contender.remove(path: node.path, owner: node.sessionID)
            throw error
        }
    }

    /// Runs `body` while holding the lock, cancels it if the lock is lost, and releases the lock.
    ///
    /// Re-entrant within a task: a `withLock` of the same lock object inside `body` (in the same
    /// task, a child task, or a `Task` it started: they inherit the lease) runs at once with the
    /// same lease, which the outermost call releases; it is cancelled when the lease ends (lost,
    /// or released by the outermost call), and refused once it has ended. (Curator's `InterProcessMutex` is re-entrant per thread; tasks move between
    /// threads, so the task is the owner here.) ``acquire(timeout:)`` is not re-entrant: a second
    /// acquire before the release queues behind the first and waits for it.
    /// - Throws: what ``acquire(timeout:)`` throws; ``CoordinationError/Code/lost`` when the body
    ///   was cancelled because the lock was lost; what `body` throws.
    @discardableResult
    public func withLock<R: Sendable>(timeout: Duration? = nil, _ body: @escaping @Sendable (LockLease) async throws -> R) async throws -> R {
        let held = Self.leasesOfThisTask
        if let lease = held[ObjectIdentifier(self)] {
            guard lease.isHeld else { throw lease.lostError() }
            // Cancelled on its own when the lease ends: an unstructured `Task` started in the
            // outer body inherits the lease too, and the outer call's cancellation does not reach it.
            return try await Coordination.run({ try await body(lease) }, cancelledWhen: { await lease.hold.waitUntilEnded() != nil }, lostError: lease.lostError)
        }
        let lease = try await acquire(timeout: timeout)
        var leases = held
        leases[ObjectIdentifier(self)] = lease
        return try await Self.$leasesOfThisTask.withValue(leases) {
            try await lease.hold.run({ try await body(lease) }, endingWith: contender, lostError: lease.lostError)
        }
    }
}

/// Why a held lease or leadership ended.
public enum LossReason: Sendable, Hashable {
    /// The connection was lost (with ``LossPolicy/onSuspended``).
    case suspended
    /// The session was presumed or known expired, or replaced.
    case sessionLost
    /// The node was deleted by someone else.
    case nodeDeleted
    /// The client was closed.
    case clientClosed
    /// It was released (or resigned) by its holder.
    case released
}

/// One hold of a ``DistributedLock``. Release it exactly once (``release()``);
/// ``DistributedLock/withLock(timeout:_:)`` does.
public final class LockLease: Sendable {
    /// The lock this lease holds.
    public let lock: DistributedLock
    let hold: Hold

    init(lock: DistributedLock, node: ContenderNode) {
        self.lock = lock
        hold = Hold(client: lock.client, node: node, policy: lock.configuration.lossPolicy)
    }

    /// Our node under the lock path.
    public var node: ContenderNode { hold.node }

    /// A number that grows with every new holder of this lock (the czxid of our node): pass it to
    /// the resource you protect so it can refuse a stale holder.
    public var fencingToken: Int64 { node.czxid }

    /// Whether the lease is still safe to assume, as far as the session says (a deletion of our
    /// node by someone else shows here once ``waitUntilLost()`` has been called).
    public var isHeld: Bool { hold.isActive }

    /// Waits until the lease ends and says why (`nil` if the waiting task is cancelled first).
    /// From the first call on, our node is watched too, so its deletion by anyone ends the lease.
    public func waitUntilLost() async -> LossReason? {
        await hold.waitUntilEnded()
    }

    /// Releases the lock: sends the delete of our node before returning, and retries it in the
    /// background until the node or its session is gone.
    public func release() async {
        await hold.end(removingWith: lock.contender)
    }

    /// Runs `operations` atomically only if we still hold the lock: the transaction also checks
    /// that our lock node exists, so a holder whose session expired cannot write.
    /// - Throws: ``CoordinationError/Code/lost`` when the lease has ended; the multi's error
    ///   (`.noNode` with `ZooKeeperError/failedOperationIndex` 0 when our node is gone).
    @discardableResult
    public func fencedMulti(_ operations: [MultiOperation]) async throws -> [MultiResult] {
        guard isHeld else { throw lostError() }
        let results = try await lock.client.multi([.check(path: node.path)] + operations)
        return Array(results.dropFirst())
    }

    func lostError() -> CoordinationError {
        hold.lostError("the lock is no longer held")
    }
}
