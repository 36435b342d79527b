import ZooKeeper

/// A barrier that holds waiters while its node exists: Curator's `DistributedBarrier` on the
/// same node (one persistent node), so Swift and Java processes can wait on one barrier.
///
/// ```swift
/// let barrier = DistributedBarrier(client: client, path: "/barriers/migration")
/// try await barrier.set()                    // the coordinator closes it
/// try await barrier.waitUntilRemoved()       // workers wait…
/// try await barrier.remove()                 // …until the coordinator opens it
/// ```
public final class DistributedBarrier: Sendable {
    /// The client the barrier uses.
    public let client: ZooKeeperClient
    /// The barrier's node: the barrier is closed while it exists.
    public let path: String

    /// A barrier on `path` (nothing is written until ``set()``).
    public init(client: ZooKeeperClient, path: String) {
        self.client = client
        self.path = path
    }

    /// Closes the barrier (creates its node, and its parents as containers; closed already is fine).
    public func set() async throws {
        do {
            try await client.create(path, parents: .container)
        } catch let error as ZooKeeperError where error.code == .nodeExists {}
    }

    /// Opens the barrier (deletes its node; open already is fine).
    public func remove() async throws {
        try await client.deleteIfExists(path)
    }

    /// Whether the barrier is closed now.
    public func isSet() async throws -> Bool {
        try await client.exists(path) != nil
    }

    /// Waits until the barrier is open (at once if it is). Survives lost connections and expired
    /// sessions: it reads the node again on the new session.
    /// - Throws: ``CoordinationError/Code/timedOut`` after `timeout`; `CancellationError`; `.closed`.
    public func waitUntilRemoved(timeout: Duration? = nil) async throws {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        try await recipeSpan("barrier.wait", path: path) {
            while true {
                do {
                    let (stat, watch) = try await client.existsAndWatch(path)
                    guard stat != nil else { return }
                    try await waitForEvent(watch, until: deadline, path: path)
                } catch let error as ZooKeeperError where error.isTransient {
                    try await waitForConnection(client, until: deadline, path: path)
                }
            }
        }
    }
}
