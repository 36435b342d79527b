import ZooKeeper

/// A 64-bit counter changed atomically by optimistic retries: Curator's `DistributedAtomicLong`
/// on the same node (8 bytes big-endian; a missing or empty node is 0), so Swift and Java
/// processes can increment one counter together without losing an increment.
///
/// Every change reads the node and writes it back at the version it read (or creates it); a
/// conflicting writer makes it try again, as often as ``retryPolicy`` allows. With a promotion
/// lock (``promotedLockPath``), when those tries are used up a second round of tries (the same
/// policy) runs holding a ``DistributedLock`` there, as Curator's `PromotedToLock` does; the wait
/// for that lock has no limit. The lock only serialises the promoted writers: the node's version
/// still decides, so a promoted round can fail too (``Result/succeeded`` is `false`).
///
/// ```swift
/// let counter = DistributedAtomicLong(client: client, path: "/counters/orders")
/// let result = try await counter.increment()
/// if result.succeeded { print(result.preValue, "→", result.postValue) }
/// ```
public final class DistributedAtomicLong: Sendable {
    /// The counter's node.
    public let node: TypedNode<BigEndianCodec<Int64>>
    /// How many optimistic tries, and how long to back off between them.
    public let retryPolicy: RetryPolicy
    /// Where the lock of the promoted tries is, if any.
    public let promotedLockPath: String?

    /// The outcome of a change, as Curator's `AtomicValue` reports it.
    public struct Result: Sendable, Hashable {
        /// Whether the change was made (a compare-and-set that did not match, or tries that ran out, did not).
        public var succeeded: Bool
        /// The value before the change.
        public var preValue: Int64
        /// The value after it (the value read, when the change was not made).
        public var postValue: Int64
        /// How many tries it took.
        public var tries: Int
    }

    /// A counter at `path` (nothing is written until it changes).
    /// - Parameters:
    ///   - client: the client it reads and writes with.
    ///   - path: the counter's node.
    ///   - retryPolicy: the optimistic tries (Curator's `RetryNTimes(n, sleep)` is `maxAttempts`
    ///     n + 1 with a fixed delay). Default: 10 attempts from 1 ms, doubling, jittered.
    ///   - promotedLockPath: a lock to take for a second round of tries after the optimistic ones (`nil`: none).
    public init(client: ZooKeeperClient, path: String, retryPolicy: RetryPolicy? = nil, promotedLockPath: String? = nil) {
        node = TypedNode(client: client, path: path, codec: BigEndianCodec(emptyIsZero: true))
        var policy = RetryPolicy()
        policy.maxAttempts = 10
        policy.initialDelay = .milliseconds(1)
        policy.maxDelay = .milliseconds(100)
        policy.maxElapsed = nil
        self.retryPolicy = retryPolicy ?? policy
        self.promotedLockPath = promotedLockPath
    }

    /// The value now (0 when the node does not exist).
    /// - Throws: `.marshallingError` naming the node when it holds neither 0 nor 8 bytes.
    public func get() async throws -> Int64 {
        do {
            return try await node.get().value
        } catch let error as ZooKeeperError where error.code == .noNode {
            return 0
        }
    }

    /// Adds 1.
    @discardableResult
    public func increment() async throws -> Result { try await add(1) }

    /// Subtracts 1.
    @discardableResult
    public func decrement() async throws -> Result { try await add(-1) }

    /// Adds `delta`.
    @discardableResult
    public func add(_ delta: Int64) async throws -> Result {
        try await change { $0 &+ delta }
    }

    /// Sets `value` whatever the value is (still one try at a time, as Curator's `trySet`).
    @discardableResult
    public func trySet(_ value: Int64) async throws -> Result {
        try await change { _ in value }
    }

    /// Sets `value` only if the value is `expected` now; one try, and never creates the node.
    @discardableResult
    public func compareAndSet(expected: Int64, _ value: Int64) async throws -> Result {
        let current: (value: Int64, stat: Stat)
        do {
            current = try await node.get()
        } catch let error as ZooKeeperError where error.code == .noNode {
            return Result(succeeded: false, preValue: 0, postValue: 0, tries: 1)
        }
        guard current.value == expected else { return Result(succeeded: false, preValue: current.value, postValue: current.value, tries: 1) }
        do {
            try await node.set(value, version: current.stat.version)
            return Result(succeeded: true, preValue: current.value, postValue: value, tries: 1)
        } catch let error as ZooKeeperError where error.code == .badVersion || error.code == .noNode {
            return Result(succeeded: false, preValue: current.value, postValue: current.value, tries: 1)
        }
    }

    /// Optimistic tries of `next(value)`, then the promoted ones under the lock.
    private func change(_ next: @escaping @Sendable (Int64) -> Int64) async throws -> Result {
        var tries = 0
        if let result = try await tryOptimistically(next, tries: &tries) { return result }
        if let promotedLockPath {
            let lock = DistributedLock(client: node.client, path: promotedLockPath)
            let (result, promotedTries) = try await lock.withLock { _ in
                var promotedTries = 0
                return (try await self.tryOptimistically(next, tries: &promotedTries), promotedTries)
            }
            tries += promotedTries
            if var result {
                result.tries = tries
                return result
            }
        }
        let value = try await get()
        return Result(succeeded: false, preValue: value, postValue: value, tries: tries)
    }

    private func tryOptimistically(_ next: (Int64) -> Int64, tries: inout Int) async throws -> Result? {
        let started = ContinuousClock.now
        while true {
            tries += 1
            if let result = try await tryOnce(next, tries: tries) { return result }
            guard case .retry(let delay) = retryPolicy.decision(afterAttempt: tries, elapsed: .now - started, random: .random(in: 0..<1)) else {
                return nil
            }
            try await Task.sleep(for: delay)
        }
    }

    /// One read and versioned write (or create); `nil` when another writer got there first.
    private func tryOnce(_ next: (Int64) -> Int64, tries: Int) async throws -> Result? {
        do {
            let (value, stat) = try await node.get()
            let updated = next(value)
            do {
                try await node.set(updated, version: stat.version)
                return Result(succeeded: true, preValue: value, postValue: updated, tries: tries)
            } catch let error as ZooKeeperError where error.code == .badVersion || error.code == .noNode {
                return nil
            }
        } catch let error as ZooKeeperError where error.code == .noNode {
            let updated = next(0)
            do {
                try await node.create(updated, parents: .container)
                return Result(succeeded: true, preValue: 0, postValue: updated, tries: tries)
            } catch let error as ZooKeeperError where error.code == .nodeExists {
                return nil
            }
        }
    }
}
