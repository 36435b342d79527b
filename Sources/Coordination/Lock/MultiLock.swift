import ZooKeeper

/// Several locks held together, or none: acquired in the order given, and released in reverse as
/// soon as one cannot be had (Curator's `InterProcessMultiLock`, which, in 5.4, keeps acquiring
/// after an error; this one stops at the first).
///
/// Give every process the same order of locks, or two processes can each hold what the other waits
/// for until their timeouts.
///
/// ```swift
/// let both = MultiLock([
///     DistributedLock(client: client, path: "/locks/accounts/alice"),
///     DistributedLock(client: client, path: "/locks/accounts/bob"),
/// ])
/// try await both.withLocks(timeout: .seconds(5)) { leases in
///     print("holding", leases.count, "locks")
/// }
/// ```
public struct MultiLock: Sendable {
    /// The locks, in the order they are acquired.
    public let locks: [DistributedLock]

    /// A lock over `locks`.
    public init(_ locks: [DistributedLock]) {
        self.locks = locks
    }

    /// Acquires every lock; `timeout` bounds the whole.
    /// - Throws: what ``DistributedLock/acquire(timeout:)`` throws for the lock that could not be
    ///   had; every lock acquired before it is released first.
    public func acquire(timeout: Duration? = nil) async throws -> [LockLease] {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var leases: [LockLease] = []
        do {
            for lock in locks {
                let remaining = deadline.map { $0 - .now }
                if let remaining, remaining <= .zero {
                    throw CoordinationError(.timedOut, path: lock.path, message: "not acquired before the deadline")
                }
                leases.append(try await lock.acquire(timeout: remaining))
            }
            return leases
        } catch {
            await Self.release(leases)
            throw error
        }
    }

    /// Releases `leases` in reverse order.
    public static func release(_ leases: [LockLease]) async {
        for lease in leases.reversed() { await lease.release() }
    }

    /// Runs `body` holding every lock, cancels it when any is lost, and releases them all.
    /// - Throws: what ``acquire(timeout:)`` throws; ``CoordinationError/Code/lost`` when the body
    ///   was cancelled because a lock was lost; what `body` throws.
    @discardableResult
    public func withLocks<R: Sendable>(timeout: Duration? = nil, _ body: @escaping @Sendable ([LockLease]) async throws -> R) async throws -> R {
        let leases = try await acquire(timeout: timeout)
        do {
            let result = try await run({ try await body(leases) }, cancelledWhen: {
                await withTaskGroup(of: Bool.self) { group in
                    for lease in leases { group.addTask { await lease.waitUntilLost() != nil } }
                    defer { group.cancelAll() }
                    for await lost in group where lost { return true }
                    return false
                }
            }, lostError: { leases.first { !$0.isHeld }?.lostError() ?? CoordinationError(.lost, path: locks.first?.path ?? "/", message: "a lock was lost") })
            await Self.release(leases)
            return result
        } catch {
            await Self.release(leases)
            throw error
        }
    }
}
