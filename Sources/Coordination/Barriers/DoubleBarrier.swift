import Foundation
import Synchronization
import ZooKeeper

/// A barrier that lets a group start together and finish together: Curator's
/// `DistributedDoubleBarrier` on the same nodes, so Swift and Java members can pass one barrier.
///
/// Each member enters with an ephemeral node `<path>/<uuid>`; when ``memberCount`` nodes are
/// there, the first to see it creates `<path>/ready` and every member proceeds. Leaving, members
/// delete their nodes and wait until all are gone (Curator's order: the member with the lowest
/// id waits for the highest, the others delete theirs and wait for the lowest).
///
/// Unlike Curator 5.4, a waiting member looks again after every wake-up (its `enter()` can return
/// early on a spurious wake-up), and a member whose session expired while it waited enters again
/// on the new session.
///
/// ```swift
/// let barrier = DoubleBarrier(client: client, path: "/barriers/batch-42", memberCount: 3)
/// try await barrier.enter()
/// // … the work the three do together …
/// try await barrier.leave()
/// ```
public final class DoubleBarrier: Sendable {
    /// The client the barrier uses.
    public let client: ZooKeeperClient
    /// The barrier's node; members and `ready` are its children.
    public let path: String
    /// How many members the barrier waits for.
    public let memberCount: Int
    /// This member's node name (a UUID, as Curator names members).
    public let memberID: String

    /// A member of the barrier at `path` for `memberCount` members.
    /// - Precondition: `memberCount >= 1`.
    public init(client: ZooKeeperClient, path: String, memberCount: Int) {
        precondition(memberCount >= 1, "memberCount must be at least 1")
        self.client = client
        self.path = path
        self.memberCount = memberCount
        memberID = UUID().uuidString.lowercased()
    }

    /// Set once the delete of our node after a failed ``enter(timeout:)`` is done: the next enter
    /// waits for it (it would otherwise delete the node that enter makes).
    private let pendingDelete = Mutex<Latch<Void>?>(nil)

    var ready: String { ZooKeeperPath.join(path, "ready") }
    var ourNode: String { ZooKeeperPath.join(path, memberID) }

    /// Enters, and waits until `memberCount` members have.
    /// - Throws: `.invalidPath` naming ``path`` before anything is written;
    ///   ``CoordinationError/Code/timedOut`` (our node is deleted then); ``CoordinationError/Code/lost``
    ///   when the session expired after our node was created (the others may have passed);
    ///   `CancellationError`; `.closed`.
    public func enter(timeout: Duration? = nil) async throws {
        try ZooKeeperPath.validate(path)  // before it is joined with member names (`""` + `ready` is valid)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        if let pending = pendingDelete.withLock({ $0 }) {
            let deleted = await withTaskGroup(of: Bool.self) { group in
                group.addTask { await pending.wait() != nil }
                if let deadline {
                    group.addTask {
                        try? await Task.sleep(until: deadline)
                        return false
                    }
                }
                defer { group.cancelAll() }
                return await group.next() ?? false
            }
            try Task.checkCancellation()
            if !deleted {
                throw CoordinationError(.timedOut, path: ourNode, message: "the node of an earlier enter that failed is not deleted yet (the connection is down)")
            }
        }
        // Our node once created: its creation (a retried delete leaves a node made again alone),
        // and the session generation it lives on.
        let ours = Mutex<(czxid: Int64, generation: Int?)?>(nil)
        do {
            try await recipeSpan("double-barrier.enter", path: path) {
                var counted = false  // our node was there for the others to count
                while true {
                    do {
                        let (readyStat, readyWatch) = try await client.existsAndWatch(ready)
                        let czxid = try await createOurNode()
                        ours.withLock { $0 = (czxid, client.state.session?.generation) }
                        counted = true
                        if readyStat != nil { return }
                        let members = try await client.childrenIfExists(path)
                        if members.count >= memberCount {
                            do {
                                try await client.create(ready)
                            } catch let error as ZooKeeperError where error.code == .nodeExists {}
                            return
                        }
                        try await waitForEvent(readyWatch, until: deadline, path: path)
                        // Look again: only `ready` lets us through.
                    } catch let error as ZooKeeperError where error.code == .sessionExpired && counted {
                        // Our node went with the session after the others could count it: they
                        // may have passed (and left) meanwhile, and entering again would wait for
                        // members that are gone. Curator's member fails here too.
                        throw CoordinationError(
                            .lost, path: ourNode, message: "the session expired while this member waited to enter: the others may have passed without it")
                    } catch let error as ZooKeeperError where error.isTransient {
                        try await waitForConnection(client, until: deadline, path: path)
                        if counted, let generation = ours.withLock({ $0?.generation }), client.state.session?.generation != generation {
                            // The expiry was learned while waiting for the connection: as above.
                            throw CoordinationError(
                                .lost, path: ourNode, message: "the session expired while this member waited to enter: the others may have passed without it")
                        }
                    }
                }
            }
        } catch {
            // Sent even from a cancelled task, and retried through a lost connection: a node left
            // behind would count as a member and let the others through one short.
            let delete = client.deleteGuaranteed(ourNode, czxid: ours.withLock { $0?.czxid })
            pendingDelete.withLock { pending in
                pending = Latch.set(after: delete) { [self] done in pendingDelete.withLock { if $0 === done { $0 = nil } } }
            }
            throw error
        }
    }

    /// Leaves, and waits until every member has.
    /// - Throws: `.invalidPath` naming ``path``; ``CoordinationError/Code/timedOut``; `CancellationError`; `.closed`.
    public func leave(timeout: Duration? = nil) async throws {
        try ZooKeeperPath.validate(path)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        try await recipeSpan("double-barrier.leave", path: path) {
            var deletedOurs = false
            while true {
                do {
                    let members = try await client.childrenIfExists(path).filter { $0 != "ready" }.sorted()
                    guard !members.isEmpty else { break }
                    let isOurs = members.contains(memberID)
                    if !isOurs && !deletedOurs { deletedOurs = true }  // gone with an earlier session: nothing to delete
                    if members == [memberID] {
                        try await client.deleteIfExists(ourNode)
                        break
                    }
                    let watched: String
                    if members.first == memberID {
                        watched = members.last!  // the lowest waits for the highest
                    } else {
                        watched = members.first!  // the others leave, then wait for the lowest
                        if isOurs {
                            try await client.deleteIfExists(ourNode)
                            deletedOurs = true
                        }
                    }
                    let (stat, watch) = try await client.existsAndWatch(ZooKeeperPath.join(path, watched))
                    if stat != nil { try await waitForEvent(watch, until: deadline, path: path) }
                } catch let error as ZooKeeperError where error.isTransient {
                    try await waitForConnection(client, until: deadline, path: path)
                }
            }
            try await client.deleteIfExists(ready)
        }
    }

    /// Creates our member node unless the current session has it (a node of an earlier session
    /// goes with that session; one of another session with our id is not ours to keep).
    /// Creates our node (or finds it, made by this session); its `czxid`.
    private func createOurNode() async throws -> Int64 {
        do {
            return try await client.create(ourNode, mode: .ephemeral, parents: .container).stat.czxid
        } catch let error as ZooKeeperError where error.code == .nodeExists {
            guard let stat = try await client.exists(ourNode) else { return try await createOurNode() }
            if stat.ephemeralOwner != client.state.session?.sessionID {
                try await client.deleteIfExists(ourNode, version: stat.version)
                return try await createOurNode()
            }
            return stat.czxid
        }
    }
}
