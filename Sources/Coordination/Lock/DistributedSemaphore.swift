import ZooKeeper

/// A counting semaphore: at most ``maxLeases`` holders at once, with Apache Curator's
/// `InterProcessSemaphoreV2` layout, so Swift and Java processes can share one semaphore.
///
/// `<path>/leases` holds one ephemeral node per lease (`_c_<uuid>-lease-<seq>`); `<path>/locks`
/// is a mutex that acquirers take one at a time while they add their lease and wait for room.
/// A lease is granted when the leases node has at most ``maxLeases`` children, counted as Curator
/// counts them (every child). A lease ends as a lock lease does: released, or lost with the
/// session as the ``LossPolicy`` says.
///
/// ```swift
/// let semaphore = DistributedSemaphore(client: client, path: "/semaphores/exports", maxLeases: 3)
/// try await semaphore.withLease(timeout: .seconds(30)) { lease in
///     print("one of three exporters, fencing token", lease.fencingToken)
/// }
/// ```
public final class DistributedSemaphore: Sendable {
    /// The client the semaphore uses.
    public let client: ZooKeeperClient
    /// The semaphore's node (`leases` and `locks` are its children).
    public let path: String
    /// How many may hold a lease at once.
    public let maxLeases: Int
    /// How leases behave (loss policy, ACL).
    public let configuration: DistributedLock.Configuration

    /// A semaphore of `maxLeases` leases on `path` (nothing is written until a lease is acquired).
    /// - Precondition: `maxLeases >= 1`.
    public init(client: ZooKeeperClient, path: String, maxLeases: Int, configuration: DistributedLock.Configuration = .init()) {
        precondition(maxLeases >= 1, "maxLeases must be at least 1")
        self.client = client
        self.path = path
        self.maxLeases = maxLeases
        self.configuration = configuration
    }

    var leases: String { ZooKeeperPath.join(path, "leases") }

    var leaseContender: QueueContender {
        QueueContender(client: client, parent: leases, lockName: "lease-", maxHolders: maxLeases, acl: configuration.acl)
    }

    /// Waits for a lease.
    /// - Throws: ``CoordinationError/Code/timedOut`` (nothing is left behind), `CancellationError`,
    ///   ``CoordinationError/Code/lost`` when the session ended while waiting, `ZooKeeperError`.
    public func acquire(timeout: Duration? = nil) async throws -> SemaphoreLease {
        try ZooKeeperPath.validate(path)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        return try await recipeSpan("semaphore.acquire", path: path) {
            // Curator's order: the mutex first, then our lease, then wait for room.
            var lockConfiguration = configuration
            lockConfiguration.lossPolicy = .onSuspended
            let mutex = DistributedLock(client: client, path: ZooKeeperPath.join(path, "locks"), configuration: lockConfiguration)
            let remaining = deadline.map { $0 - .now }
            if let remaining, remaining <= .zero { throw leaseContender.timedOut() }
            let turn = try await mutex.acquire(timeout: remaining)
            let contender = leaseContender
            do {
                let (node, initial) = try await contender.enqueue(data: [], deadline: deadline)
                do {
                    try await waitForRoom(node, children: initial, deadline: deadline)
                } catch {
                    await contender.remove(path: node.path, owner: node.sessionID)
                    throw error
                }
                await turn.release()
                return SemaphoreLease(semaphore: self, node: node)
            } catch {
                await turn.release()
                throw error
            }
        }
    }

    /// Runs `body` while holding a lease, cancels it if the lease is lost, and releases it.
    /// - Throws: what ``acquire(timeout:)`` throws; ``CoordinationError/Code/lost`` when the body
    ///   was cancelled because the lease was lost; what `body` throws.
    @discardableResult
    public func withLease<R: Sendable>(timeout: Duration? = nil, _ body: @escaping @Sendable (SemaphoreLease) async throws -> R) async throws -> R {
        let lease = try await acquire(timeout: timeout)
        return try await lease.hold.run({ try await body(lease) }, endingWith: leaseContender, lostError: lease.lostError)
    }

    /// The lease nodes now (names, in the order they were created).
    public func participants() async throws -> [String] {
        LockQueue.queue(try await client.childrenIfExists(leases)).map(\.name)
    }

    /// Waits until the leases node has at most `maxLeases` children, ours among them.
    private func waitForRoom(_ node: ContenderNode, children initial: [String]?, deadline: ContinuousClock.Instant?) async throws {
        var known: [String]? = initial
        while true {
            try Task.checkCancellation()
            try leaseContender.checkDeadline(deadline)
            guard client.state.session?.generation == node.generation else {
                throw CoordinationError(.lost, path: node.path, message: "the session that created the lease ended")
            }
            let names: [String]
            let watch: NodeWatch?
            if let listed = known {
                (names, watch) = (listed, nil)
                known = nil
            } else {
                do {
                    let (children, childrenWatch) = try await client.getChildrenAndWatch(leases)
                    (names, watch) = (children.names, childrenWatch)
                } catch let error as ZooKeeperError where error.isRetryable {
                    try await leaseContender.waitForConnection(deadline: deadline)  // within the caller's deadline
                    continue
                }
            }
            guard names.contains(node.name) else {
                throw CoordinationError(.lost, path: node.path, message: "the lease's node is gone")
            }
            if names.count <= maxLeases { return }
            guard let watch else { continue }
            do {
                try await leaseContender.wait(for: watch, deadline: deadline)
            } catch let error as ZooKeeperError where error.code == .sessionExpired {
                throw CoordinationError(.lost, path: node.path, message: "the session that created the lease expired")
            }
        }
    }
}

/// One lease of a ``DistributedSemaphore``. Release it exactly once (``release()``);
/// ``DistributedSemaphore/withLease(timeout:_:)`` does.
public final class SemaphoreLease: Sendable {
    /// The semaphore this lease belongs to.
    public let semaphore: DistributedSemaphore
    let hold: Hold

    init(semaphore: DistributedSemaphore, node: ContenderNode) {
        self.semaphore = semaphore
        hold = Hold(client: semaphore.client, node: node, policy: semaphore.configuration.lossPolicy)
    }

    /// Our lease node.
    public var node: ContenderNode { hold.node }

    /// Grows with every new lease of every path (the czxid of our node).
    public var fencingToken: Int64 { node.czxid }

    /// Whether the lease is still safe to assume.
    public var isHeld: Bool { hold.isActive }

    /// Waits until the lease ends and says why (`nil` if the waiting task is cancelled first).
    public func waitUntilLost() async -> LossReason? {
        await hold.waitUntilEnded()
    }

    /// Returns the lease: sends the delete of our node, retried in the background until it is gone.
    public func release() async {
        await hold.end(removingWith: semaphore.leaseContender)
    }

    func lostError() -> CoordinationError {
        hold.lostError("the lease is no longer held")
    }
}
