import Foundation
import ZooKeeper

/// A contender node this process created and owns: the node behind a lock lease or a
/// leadership term.
public struct ContenderNode: Sendable, Hashable {
    /// The node's full path.
    public let path: String
    /// The session that owns it (its `ephemeralOwner`).
    package let sessionID: Int64
    /// The client's session generation when it was created.
    package let generation: Int
    /// The node's creation zxid: increases with every new contender of every path.
    package let czxid: Int64
    /// The node's name.
    public var name: String { ZooKeeperPath.name(of: path) }

    package init(path: String, sessionID: Int64, generation: Int, czxid: Int64) {
        self.path = path
        self.sessionID = sessionID
        self.generation = generation
        self.czxid = czxid
    }
}

/// The queue algorithm shared by the lock, the semaphore, the read/write lock and the election:
/// a GUID-protected ephemeral-sequential node under a container parent, a decision from
/// ``LockQueue``, and a wait on exactly one node. This is the shell; ``LockQueue`` is the core.
struct QueueContender: Sendable {
    let client: ZooKeeperClient
    let parent: String
    /// The lock name of our node (`lock-`, `latch-`, `__READ__`, `__WRIT__`, `lease-`; see ``LockQueue``).
    let lockName: String
    let maxHolders: Int
    /// The ACL of the parent (when this contender creates it) and of our node.
    var acl: [ACL] = ACL.openUnsafe

    /// Creates our node and reads the queue in one round trip (the two requests are pipelined).
    ///
    /// A create whose reply is lost (`connectionLoss`) may have happened: the queue is searched for
    /// our GUID, and a node found is adopted only if the current session owns it; a node of an
    /// earlier session is deleted and the create retried.
    ///
    /// - Returns: our node, and the queue as read with it (`nil` when that read did not come
    ///   back: read it again).
    func enqueue(data: [UInt8], deadline: ContinuousClock.Instant?) async throws -> (ContenderNode, [String]?) {
        let guid = UUID().uuidString.lowercased()  // Curator's protection id: a UUID with dashes
        let prefix = ZooKeeperPath.join(parent, LockQueue.prefix(guid: guid, lockName: lockName))
        while true {
            try checkDeadline(deadline)
            guard let session = client.state.session, client.state.isConnected else {
                try await waitForConnection(deadline: deadline)
                continue
            }
            let create = client.submitCreate(prefix, data: data, mode: .ephemeralSequential, acl: acl)
            let children = client.submitGetChildren(parent)
            do {
                let created: CreatedNode
                do {
                    created = try await create.value()
                } catch is CancellationError {
                    // The create was sent and may have happened: find our node by its GUID and
                    // delete it, in a task the cancellation does not reach.
                    Task.detached { [self] in await removeCreated(guid: guid) }
                    throw CancellationError()
                } catch let error as ZooKeeperError where error.code == .noNode {
                    _ = try? await children.value()
                    try await client.createPath(parent, mode: .container, acl: acl)
                    continue
                }
                let node = ContenderNode(path: created.path, sessionID: created.stat.ephemeralOwner,
                                         generation: session.generation, czxid: created.stat.czxid)
                return (node, try? await children.value().names)
            } catch let error as ZooKeeperError where error.code == .connectionLoss || error.code == .operationTimeout {
                _ = try? await children.value()
                do {
                    if let recovered = try await recover(guid: guid, deadline: deadline) { return recovered }
                } catch {
                    // Out of time (or cancelled) before the connection came back: the create may
                    // have happened, so the node is looked for and deleted once it does.
                    Task.detached { [self] in await removeCreated(guid: guid) }
                    throw error
                }
            } catch let error as ZooKeeperError where error.code == .sessionExpired {
                _ = try? await children.value()
                continue  // the node, if created, dies with the old session
            }
        }
    }

    /// Enqueues and waits until first in line: the whole acquire of a lock, a lease or a term.
    /// A node that dies with its session while waiting is replaced on the new session (within the
    /// deadline); on any other failure, our node is deleted before this throws.
    func acquire(data: [UInt8], deadline: ContinuousClock.Instant?) async throws -> ContenderNode {
        try ZooKeeperPath.validate(parent)
        while true {
            let (node, children) = try await enqueue(data: data, deadline: deadline)
            do {
                try await awaitTurn(node, children: children, deadline: deadline)
                return node
            } catch let error as CoordinationError where error.code == .lost {
                await remove(path: node.path, owner: node.sessionID)
                continue
            } catch {
                await remove(path: node.path, owner: node.sessionID)
                throw error
            }
        }
    }

    /// Deletes the node created with `guid`, if it exists (after a create that was cancelled or
    /// whose reply was lost). A children read sent after the create sees it (the server answers a
    /// session's requests in order). While the connection is down, even past the point where the
    /// session is presumed expired, it tries again: if the same session comes back, so does the
    /// node. It stops once the session is gone (the node went with it), there is no parent, or
    /// the client is closed.
    func removeCreated(guid: String) async {
        let generation = client.state.session?.generation
        while true {
            do {
                let children = try await client.getChildren(parent).names
                if let name = LockQueue.find(guid: guid, in: children) { await remove(path: ZooKeeperPath.join(parent, name)) }
                return
            } catch let error as ZooKeeperError where error.isRetryable && client.state.session?.generation == generation {
                await client.pauseBeforeCleanupRetry()
            } catch {
                return
            }
        }
    }

    /// Looks for the node created with `guid` after a lost reply.
    private func recover(guid: String, deadline: ContinuousClock.Instant?) async throws -> (ContenderNode, [String]?)? {
        while true {
            try checkDeadline(deadline)
            do {
                try await waitForConnection(deadline: deadline)
                let children = try await client.getChildren(parent).names
                guard let name = LockQueue.find(guid: guid, in: children) else { return nil }
                let path = ZooKeeperPath.join(parent, name)
                guard let stat = try await client.exists(path) else { return nil }
                guard let session = client.state.session, stat.ephemeralOwner == session.sessionID else {
                    // Created by an earlier session of ours that the server has not cleaned up yet:
                    // never adopt it (CURATOR-604), remove it and create again.
                    await remove(path: path, owner: stat.ephemeralOwner)
                    return nil
                }
                return (ContenderNode(path: path, sessionID: stat.ephemeralOwner, generation: session.generation, czxid: stat.czxid), children)
            } catch let error as ZooKeeperError where error.isTransient {
                continue
            }
        }
    }

    /// Waits until `node` is first in line (or among the first `maxHolders`), checking that the
    /// current session owns it before saying so.
    /// - Throws: ``CoordinationError/Code/lost`` when our node disappeared (the session expired),
    ///   ``CoordinationError/Code/timedOut``, `CancellationError`, or a `ZooKeeperError`.
    func awaitTurn(_ node: ContenderNode, children initial: [String]?, deadline: ContinuousClock.Instant?) async throws {
        var children = initial
        while true {
            try Task.checkCancellation()
            try checkDeadline(deadline)
            do {
                guard client.state.session?.generation == node.generation else { throw lost(node, "the session that created it ended") }
                let names: [String]
                if let known = children { names = known } else { names = try await client.getChildren(parent).names }
                children = nil
                switch LockQueue.decide(children: names, ours: node.name, maxHolders: maxHolders) {
                case .missing:
                    throw lost(node, "its node is gone")
                case .acquired:
                    // Owner check: never take a node of another session for ours (CURATOR-696).
                    // `node.sessionID` is the node's ephemeralOwner as the server reported it at
                    // creation (or recovery); the node is in the listing just read; so it is ours
                    // exactly when that owner is the session we have now.
                    guard client.state.session?.sessionID == node.sessionID else {
                        throw lost(node, "its node belongs to another session")
                    }
                    return
                case .wait(let predecessor):
                    // getData, not exists: a watch on a missing node would stay behind as a creation watch.
                    let watch: NodeWatch
                    do {
                        (_, watch) = try await client.getDataAndWatch(ZooKeeperPath.join(parent, predecessor))
                    } catch let error as ZooKeeperError where error.code == .noNode {
                        continue
                    }
                    try await wait(for: watch, deadline: deadline)
                }
            } catch let error as ZooKeeperError where error.isRetryable {
                try await waitForConnection(deadline: deadline)
            } catch let error as ZooKeeperError where error.code == .sessionExpired {
                throw lost(node, "the session expired")
            }
        }
    }

    func wait(for watch: NodeWatch, deadline: ContinuousClock.Instant?) async throws {
        try await waitForEvent(watch, until: deadline, path: parent, what: "acquired")
    }

    /// Deletes `path` whatever happens to the calling task (``ZooKeeperClient/deleteGuaranteed(_:owner:czxid:version:)``).
    func remove(path: String, owner: Int64? = nil) async {
        client.deleteGuaranteed(path, owner: owner)
    }

    /// Waits until the client is connected (`ZooKeeperClient/waitUntilConnected(timeout:)`), or
    /// throws ``CoordinationError/Code/timedOut`` at the deadline.
    func waitForConnection(deadline: ContinuousClock.Instant?) async throws {
        try checkDeadline(deadline)
        try await Coordination.waitForConnection(client, until: deadline, path: parent)
    }

    func checkDeadline(_ deadline: ContinuousClock.Instant?) throws {
        if let deadline, ContinuousClock.now >= deadline { throw timedOut() }
    }

    func timedOut() -> CoordinationError {
        CoordinationError(.timedOut, path: parent, message: "not acquired before the deadline")
    }

    func lost(_ node: ContenderNode, _ reason: String) -> CoordinationError {
        CoordinationError(.lost, path: node.path, message: reason)
    }
}
