import Synchronization
import ZooKeeper

/// A distributed lock on a ZooKeeper path: exclusive (a mutex), or ``Kind/read`` /
/// ``Kind/write`` for a read/write lock, or with `maxHolders > 1` a counting semaphore.
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
        /// Exclusive: one holder (or `maxHolders` of them, for a semaphore).
        case exclusive
        /// The read side of a read/write lock: shared with other readers, excluded by writers.
        case read
        /// The write side of a read/write lock: excludes readers and writers.
        case write
    }

    /// The client the lock uses.
    public let client: ZooKeeperClient
    /// The lock's node; contenders are its children. It is created as a container node.
    public let path: String
    /// What a holder shares with other holders.
    public let kind: Kind
    /// How many may hold at once (1 for a mutex).
    public let maxHolders: Int
    /// How the lock behaves.
    public let configuration: Configuration

    /// A mutex (`kind: .exclusive`, `maxHolders: 1`), a read or write side of a read/write lock,
    /// or a semaphore (`.exclusive` with `maxHolders` leases).
    public init(
        client: ZooKeeperClient, path: String, kind: Kind = .exclusive, maxHolders: Int = 1,
        configuration: Configuration = Configuration()
    ) {
        precondition(maxHolders >= 1, "maxHolders must be at least 1")
        self.client = client
        self.path = path
        self.kind = kind
        self.maxHolders = maxHolders
        self.configuration = configuration
    }

    /// A counting semaphore: at most `leases` holders at once.
    public static func semaphore(client: ZooKeeperClient, path: String, leases: Int, configuration: Configuration = Configuration()) -> DistributedLock {
        DistributedLock(client: client, path: path, kind: .exclusive, maxHolders: leases, configuration: configuration)
    }

    var contender: QueueContender {
        QueueContender(client: client, parent: path, kind: kind, maxHolders: maxHolders, acl: configuration.acl)
    }

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
    public func tryAcquire() async throws -> LockLease? {
        try ZooKeeperPath.validate(path)
        let contender = self.contender
        let (node, children) = try await contender.enqueue(data: [], deadline: nil)
        do {
            let names = children.isEmpty ? try await client.getChildren(path).names : children
            guard LockQueue.decide(children: names, ours: node.name, maxHolders: maxHolders) == .acquired else {
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
    /// - Throws: what ``acquire(timeout:)`` throws; ``CoordinationError/Code/lost`` when the body
    ///   was cancelled because the lock was lost; what `body` throws.
    @discardableResult
    public func withLock<R: Sendable>(timeout: Duration? = nil, _ body: @escaping @Sendable (LockLease) async throws -> R) async throws -> R {
        let lease = try await acquire(timeout: timeout)
        return try await lease.hold.run({ try await body(lease) }, endingWith: contender, lostError: lease.lostError)
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
