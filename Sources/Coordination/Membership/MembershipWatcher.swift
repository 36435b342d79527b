import Synchronization
import ZooKeeper

/// Group membership on a ZooKeeper path: publish this process as a member, and watch the group.
///
/// - ``join(memberID:payload:waitingForOtherSession:)`` publishes the ephemeral node `<group>/<memberID>` with `payload`.
///   A node already there is adopted only if the current session owns it; one left by an earlier
///   session of this client is waited out; one held by another live session is waited out for
///   `waitingForOtherSession` (a restarted process finds its crashed predecessor's node until the
///   server expires that session), then is a ``CoordinationError/Code/duplicateMember`` error.
/// - ``join(sequentialPrefix:payload:)`` publishes an ephemeral *sequential* node
///   `<group>/<prefix><sequence>` instead (Sensei's `member_0000000007`): the server names it.
/// - After a new session the member is published again, with the latest payload; after
///   ``leave()`` it is never published again. Lost connections and expired sessions only delay
///   that: the member is published again on the next session, however many expire.
/// - ``members()`` streams full snapshots (member id → payload), re-armed after every event and
///   resynchronised after reconnects and new sessions; ``awaitStable(quietPeriod:)`` returns the
///   members once they have not changed for a quiet period.
public final class MembershipWatcher: Sendable {
    /// The client the watcher uses.
    public let client: ZooKeeperClient
    /// The group's node; members are its children.
    public let group: String

    /// How the member's node is named.
    private enum Naming: Sendable, Equatable {
        /// `<group>/<memberID>`.
        case fixed(String)
        /// `<group>/<prefix><sequence>`, named by the server at each publication.
        case sequential(prefix: String)
    }

    private struct Desired: Sendable {
        var naming: Naming
        var payload: [UInt8]
        /// The node's name in the group once published (for a sequential member, the name the
        /// server gave it on the current session).
        var publishedName: String?
        /// The session generation the node was last published on.
        var publishedGeneration: Int?
        /// The published node's creation (`czxid`) and the version it was last written at (`nil`
        /// when a write's outcome is unknown): a retried delete leaves alone a node created again
        /// at the same path, or written since by someone else.
        var publishedCzxid: Int64?
        var publishedVersion: Int32?
        /// A create whose reply was lost on this session id: it may have created a node, which
        /// the next publication adopts (a sequential one, instead of creating another), or a
        /// leave deletes.
        var uncertainCreate: Int64?
        /// The payload that create carried (the payload may have changed since).
        var uncertainPayload: [UInt8]?
    }

    private struct State: Sendable {
        var desired: Desired?
        var left = false
        /// Session ids this client had before the current one (their nodes are ours to wait out).
        var earlierSessions: Set<Int64> = []
        var lastSession: Int64?
        var keeper: Task<Void, Never>?
    }
    private let state = Mutex(State())
    /// Set by ``leave()``: a publication waiting for the connection stops waiting.
    private let hasLeft = Latch<Void>()
    /// Serialises join, updatePayload, leave and republishing.
    private let publishing = AsyncLock()

    /// Deletes of member nodes a leave still retries in the background, by client and name (the
    /// member id, or the prefix of sequential members): a join under the same name on the same
    /// client waits for them, or the retry could delete the node the join makes or adopts.
    private struct PendingDeleteKey: Hashable {
        var client: ObjectIdentifier
        var name: String
    }
    private static let pendingDeletes = Mutex<[PendingDeleteKey: Latch<Void>]>([:])

    private func pendingDeleteKey(_ naming: Naming) -> PendingDeleteKey {
        switch naming {
        case .fixed(let memberID): PendingDeleteKey(client: ObjectIdentifier(client), name: ZooKeeperPath.join(group, memberID))
        case .sequential(let prefix): PendingDeleteKey(client: ObjectIdentifier(client), name: ZooKeeperPath.join(group, prefix))
        }
    }

    /// Records `delete` as pending for `naming` until it ends, and until the deletes pending
    /// before it for the same name end (the latest latch stands for all of them).
    private func track(_ delete: Task<Void, Never>, for naming: Naming) {
        let key = pendingDeleteKey(naming)
        Self.pendingDeletes.withLock { pending in
            pending[key] = Latch.set(after: delete, andAfter: pending[key]) { done in
                Self.pendingDeletes.withLock { pending in if pending[key] === done { pending[key] = nil } }
            }
        }
    }

    /// The ACL of this member's node (and of the group's node when the join creates it).
    public let acl: [ACL]

    /// A watcher of the group at `group` (nothing is read or written until it is used); `acl` is the ACL of this member's node.
    public init(client: ZooKeeperClient, group: String, acl: [ACL] = ACL.openUnsafe) {
        self.client = client
        self.group = group
        self.acl = acl
    }

    deinit {
        state.withLock { $0.keeper?.cancel() }
    }

    /// The member id this process joined with (for a sequential member, its node's current name),
    /// if it is a member.
    public var memberID: String? {
        state.withLock { state in
            guard !state.left, let desired = state.desired else { return nil }
            switch desired.naming {
            case .fixed(let memberID): return memberID
            case .sequential: return desired.publishedName
            }
        }
    }

    /// Publishes this process as `memberID` with `payload`, and keeps it published across new
    /// sessions until ``leave()``.
    /// - Throws: ``CoordinationError/Code/invalidArgument`` when `memberID` is not one node name
    ///   (empty, `.`, `..`, containing `/` or characters ZooKeeper refuses), before anything is
    ///   written; ``CoordinationError/Code/duplicateMember`` when another live session holds the
    ///   id; ``CoordinationError/Code/closed`` after ``leave()``; `ZooKeeperError`.
    public func join(memberID: String, payload: [UInt8] = [], waitingForOtherSession: Duration = .zero) async throws {
        try validateNodeName(memberID, what: "member id")
        try ZooKeeperPath.validate(group)
        try await join(.fixed(memberID), payload: payload, otherSessionDeadline: .now + waitingForOtherSession)
    }

    /// Throws ``CoordinationError/Code/invalidArgument`` unless `name` is one node name that
    /// ZooKeeper accepts (a member id must not make the member a node deeper in the tree).
    private func validateNodeName(_ name: String, what: String, isSequential: Bool = false) throws {
        let problem: String?
        if name.isEmpty && !isSequential {
            problem = "it is empty"
        } else if name.contains("/") {
            problem = "it contains \"/\" (it must be one node name)"
        } else {
            problem = ZooKeeperPath.problem(in: "/" + name + (isSequential ? "0" : ""))
        }
        if let problem {
            throw CoordinationError(.invalidArgument, path: group, message: "invalid \(what) \"\(name)\": \(problem)")
        }
    }

    /// Publishes this process as the ephemeral sequential node `<group>/<prefix><sequence>` with
    /// `payload`, and keeps it published across new sessions (under a new sequence number each
    /// time) until ``leave()``. A create whose reply was lost is not repeated blindly: a node of
    /// this session with the same payload is adopted, so give each member of one session in one
    /// group its own payload.
    /// - Returns: the node's name in the group (``memberID`` follows it after a new session).
    /// - Throws: ``CoordinationError/Code/invalidArgument`` when `prefix` contains `/` or
    ///   characters ZooKeeper refuses; ``CoordinationError/Code/closed`` after ``leave()``;
    ///   `ZooKeeperError`.
    @discardableResult
    public func join(sequentialPrefix prefix: String, payload: [UInt8] = []) async throws -> String {
        try validateNodeName(prefix, what: "member name prefix", isSequential: true)
        try ZooKeeperPath.validate(group)
        try await join(.sequential(prefix: prefix), payload: payload, otherSessionDeadline: .now)
        guard let name = memberID else { throw CoordinationError(.closed, path: group, message: "this watcher has left the group") }
        return name
    }

    private func join(_ naming: Naming, payload: [UInt8], otherSessionDeadline: ContinuousClock.Instant) async throws {
        if state.withLock({ $0.left }) { throw CoordinationError(.closed, path: group, message: "this watcher has left the group") }
        if let pending = Self.pendingDeletes.withLock({ $0[pendingDeleteKey(naming)] }) {
            _ = await pending.wait()
            try Task.checkCancellation()
        }
        try await recipeSpan("membership.join", path: group) { try await publish(naming, payload: payload, otherSessionDeadline: otherSessionDeadline) }
        startKeeper()
    }

    private func publish(_ naming: Naming, payload: [UInt8], otherSessionDeadline: ContinuousClock.Instant) async throws {
        try await publishing.withLock {
            try state.withLock { state in
                if state.left { throw CoordinationError(.closed, path: group, message: "this watcher has left the group") }
                state.desired = Desired(naming: naming, payload: payload)
            }
            try await publish(otherSessionDeadline: otherSessionDeadline)
            if state.withLock({ $0.left }) { throw CoordinationError(.closed, path: group, message: "this watcher left the group while joining") }
        }
    }

    /// Replaces this member's payload (also used when it is published again after a new session).
    public func updatePayload(_ payload: [UInt8]) async throws {
        try await publishing.withLock {
            let name = try state.withLock { state -> String? in
                guard !state.left, state.desired != nil else {
                    throw CoordinationError(.notHeld, path: group, message: "not a member: join first")
                }
                state.desired!.payload = payload
                return state.desired!.publishedName
            }
            guard let name else { return try await publish() }  // not published yet: publish with this payload
            while true {
                let generation = state.withLock { $0.desired?.publishedGeneration }
                do {
                    guard generation == client.state.session?.generation else { return try await publish() }  // an earlier session's node
                    let written = try await client.setData(ZooKeeperPath.join(group, name), data: payload)
                    state.withLock { $0.desired?.publishedVersion = written.version }
                    return
                } catch let error as ZooKeeperError where error.code == .noNode {
                    return try await publish()  // gone: publish with the new payload
                } catch let error as ZooKeeperError where error.isTransient {
                    // On the same session the node is still ours: write it again once connected
                    // (publishing anew would make a second node of a sequential member).
                    state.withLock { $0.desired?.publishedVersion = nil }  // written or not: unknown
                    try await Task.sleep(for: .milliseconds(50))  // not at once when throttled
                    try await waitUntilConnectedOrLeft()
                    if state.withLock({ $0.left }) { throw CoordinationError(.closed, path: group, message: "this watcher left the group") }
                }
            }
        }
    }

    /// Leaves the group: forgets the membership first (so nothing republishes it, and a
    /// republication waiting for ZooKeeper gives up), then deletes the node. A delete the
    /// connection cuts off, or that a cancelled caller could not send, is sent and retried in the
    /// background until it is done or the session is gone; this does not wait for that.
    public func leave() async throws {
        let keeper = state.withLock { state -> Task<Void, Never>? in
            state.left = true
            defer { state.keeper = nil }
            return state.keeper
        }
        hasLeft.set(())
        keeper?.cancel()
        let desired = await publishing.withLock { state.withLock { $0.desired } }
        guard let desired else { return }
        guard let name = desired.publishedName, desired.publishedGeneration == client.state.session?.generation else {
            // Not published on this session as far as we know (the node published on an earlier
            // one went with it); a create whose reply was lost may have made one all the same.
            deleteUnfinishedPublication(desired)
            return
        }
        let path = ZooKeeperPath.join(group, name)
        do {
            try await client.delete(path)
        } catch let error as ZooKeeperError where error.code == .noNode || error.code == .sessionExpired || error.code == .closed {
        } catch let error as ZooKeeperError where error.isRetryable {
            // Retried once the connection is back: a member node left behind would stay in the
            // group (and in every count of it) for the session's life.
            track(client.deleteGuaranteed(path, czxid: desired.publishedCzxid, version: desired.publishedVersion), for: desired.naming)
        } catch is CancellationError {
            // A cancelled caller's request is never sent; leaving is cleanup, and goes on.
            track(client.deleteGuaranteed(path, czxid: desired.publishedCzxid, version: desired.publishedVersion), for: desired.naming)
        }
    }

    /// Deletes, in the background, the node a publication on the current session may have made
    /// without hearing back (a create whose reply was lost): the member id's node if this session
    /// holds it, or this session's sequential node with the payload. Tried again while the
    /// connection is down and the session lives (the node with it).
    private func deleteUnfinishedPublication(_ desired: Desired) {
        guard let session = client.state.session, desired.uncertainCreate == session.sessionID else { return }
        let delete = Task.detached { [self] in
            while client.state.session?.sessionID == session.sessionID {
                do {
                    switch desired.naming {
                    case .fixed(let memberID):
                        let path = ZooKeeperPath.join(group, memberID)
                        if let stat = try await client.exists(path), stat.ephemeralOwner == session.sessionID {
                            await client.deleteGuaranteed(path, owner: session.sessionID, czxid: stat.czxid, version: stat.version).value
                        }
                    case .sequential(let prefix):
                        if let node = try await ownSequentialNode(prefix: prefix, payload: desired.uncertainPayload ?? desired.payload, session: session) {
                            await client.deleteGuaranteed(ZooKeeperPath.join(group, node.name), owner: session.sessionID, czxid: node.stat.czxid, version: node.stat.version).value
                        }
                    }
                    return
                } catch let error as ZooKeeperError where error.isRetryable {
                    await client.pauseBeforeCleanupRetry()
                } catch {
                    return
                }
            }
        }
        track(delete, for: desired.naming)
    }

    /// Waits for `watch` to fire, for `deadline`, or for ``leave()``, whichever comes first (a
    /// leave waits for the publication holding the lock, so the publication must not wait
    /// without it).
    private func waitForTriggerOrLeave(_ watch: NodeWatch, until deadline: ContinuousClock.Instant?) async {
        let hasLeft = self.hasLeft
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await watch.triggered() }
            group.addTask { _ = await hasLeft.wait() }
            if let deadline { group.addTask { try? await Task.sleep(until: deadline) } }
            await group.next()
            group.cancelAll()
        }
    }

    /// Creates (or adopts) the member node for the desired state, waiting until
    /// `otherSessionDeadline` for a node another session holds to go. Retries through lost
    /// connections and expired sessions. Call under `publishing`.
    private func publish(otherSessionDeadline: ContinuousClock.Instant = .now) async throws {
        while true {
            guard let (desired, earlier) = state.withLock({ state -> (Desired, Set<Int64>)? in
                guard !state.left, let desired = state.desired else { return nil }
                return (desired, state.earlierSessions)
            }) else { return }
            guard let session = client.state.session, client.state.isConnected else {
                try await waitUntilConnectedOrLeft()
                continue
            }
            do {
                switch desired.naming {
                case .fixed(let memberID):
                    try await publish(memberID: memberID, desired: desired, session: session, earlier: earlier, otherSessionDeadline: otherSessionDeadline)
                case .sequential(let prefix):
                    try await publish(prefix: prefix, desired: desired, session: session)
                }
                return
            } catch let error as ZooKeeperError where error.isTransient {
                try await Task.sleep(for: .milliseconds(50))
                try await waitUntilConnectedOrLeft()
            } catch is RetryNow {
                continue
            }
        }
    }

    /// Waits until the client is connected, or until ``leave()`` is called (a publication
    /// waiting for ZooKeeper must not hold up the leave, which waits for it).
    private func waitUntilConnectedOrLeft() async throws {
        let (client, hasLeft) = (self.client, self.hasLeft)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await client.waitUntilConnected() }
            group.addTask { _ = await hasLeft.wait() }
            defer { group.cancelAll() }
            try await group.next()
        }
        try Task.checkCancellation()  // a cancelled wait ends the latch's wait too: not a wake-up
    }

    /// Thrown inside a publication that must start over at once (the node changed meanwhile).
    private struct RetryNow: Error {}

    private func publish(
        memberID: String, desired: Desired, session: SessionInfo, earlier: Set<Int64>, otherSessionDeadline: ContinuousClock.Instant
    ) async throws {
        let path = ZooKeeperPath.join(group, memberID)
        // Until its reply says otherwise, the create may have been applied (a lost reply, a
        // cancelled caller): a leave deletes the node if this session holds it.
        state.withLock { $0.desired?.uncertainCreate = session.sessionID }
        do {
            let created = try await client.create(path, data: desired.payload, mode: .ephemeral, acl: acl, parents: .persistent)
            markPublished(name: memberID, generation: session.generation, node: created.stat)
        } catch let error as ZooKeeperError where error.code != .nodeExists && !Self.mayHaveBeenApplied(error) {
            state.withLock { $0.desired?.uncertainCreate = nil }  // the server said no
            throw error
        } catch let error as ZooKeeperError where error.code == .nodeExists {
            guard let stat = try await client.exists(path) else { throw RetryNow() }
            if stat.ephemeralOwner == session.sessionID {
                let written = try await client.setData(path, data: desired.payload)  // ours: adopt it
                markPublished(name: memberID, generation: session.generation, node: written)
                return
            }
            if earlier.contains(stat.ephemeralOwner) {
                // Left by an earlier session of ours: the server deletes it soon. Wait it out.
                let (still, watch) = try await client.existsAndWatch(path)
                if still != nil { await waitForTriggerOrLeave(watch, until: nil) }
                throw RetryNow()
            }
            if ContinuousClock.now < otherSessionDeadline {
                // Another session's: wait (until the deadline) for it to go, then try again.
                let (still, watch) = try await client.existsAndWatch(path)
                if still != nil { await waitForTriggerOrLeave(watch, until: otherSessionDeadline) }
                throw RetryNow()
            }
            throw CoordinationError(
                .duplicateMember, path: path,
                message: "member id \(memberID) is held by another live session (0x\(String(UInt64(bitPattern: stat.ephemeralOwner), radix: 16)))")
        }
    }

    private func publish(prefix: String, desired: Desired, session: SessionInfo) async throws {
        if desired.uncertainCreate == session.sessionID,
            let adopted = try await ownSequentialNode(prefix: prefix, payload: desired.uncertainPayload ?? desired.payload, session: session)
        {
            // Made with the payload of then: given the payload of now.
            let path = ZooKeeperPath.join(group, adopted.name)
            let node = desired.uncertainPayload == desired.payload ? adopted.stat : try await client.setData(path, data: desired.payload)
            markPublished(name: adopted.name, generation: session.generation, node: node)
            return
        }
        // Until its reply says otherwise, the create may have been applied (a lost reply, a
        // cancelled caller): the next publication looks for it before creating another, and a
        // leave deletes it.
        state.withLock { state in
            state.desired?.uncertainCreate = session.sessionID
            state.desired?.uncertainPayload = desired.payload
        }
        do {
            let created = try await client.create(
                ZooKeeperPath.join(group, prefix), data: desired.payload, mode: .ephemeralSequential, acl: acl, parents: .persistent)
            markPublished(name: String(created.path.split(separator: "/").last ?? ""), generation: session.generation, node: created.stat)
        } catch let error as ZooKeeperError where !Self.mayHaveBeenApplied(error) {
            state.withLock { $0.desired?.uncertainCreate = nil }  // the server said no
            throw error
        }
    }

    /// The node of this session with `payload` under `prefix` (a sequential create whose reply
    /// was lost), with its stat; duplicates of it are deleted.
    private func ownSequentialNode(prefix: String, payload: [UInt8], session: SessionInfo) async throws -> (name: String, stat: Stat)? {
        var found: [(name: String, stat: Stat)] = []
        for name in try await client.getChildren(group).names.sorted() where name.hasPrefix(prefix) {
            do {
                let node = try await client.getData(ZooKeeperPath.join(group, name))
                if node.stat.ephemeralOwner == session.sessionID && node.bytes == payload { found.append((name, node.stat)) }
            } catch let error as ZooKeeperError where error.code == .noNode {}
        }
        for duplicate in found.dropFirst() {
            try await client.deleteIfExists(ZooKeeperPath.join(group, duplicate.name))
        }
        return found.first
    }

    /// Whether a request that failed with `error` may have been applied all the same (its reply
    /// lost with the connection).
    private static func mayHaveBeenApplied(_ error: ZooKeeperError) -> Bool {
        error.code == .connectionLoss || error.code == .operationTimeout
    }

    private func markPublished(name: String, generation: Int, node: Stat) {
        state.withLock { state in
            state.desired?.publishedName = name
            state.desired?.publishedGeneration = generation
            state.desired?.publishedCzxid = node.czxid
            state.desired?.publishedVersion = node.version
            state.desired?.uncertainCreate = nil
        }
    }


    /// Follows the session: remembers earlier session ids and republishes on every new session.
    private func startKeeper() {
        let needsKeeper = state.withLock { state -> Bool in state.keeper == nil && !state.left }
        guard needsKeeper else { return }
        let keeper = Task { [weak self, client] in
            for await event in client.sessionEvents {
                guard let self else { return }
                switch event {
                case .connected(let info), .readOnly(let info):
                    let republish = self.state.withLock { state -> Bool in
                        if let last = state.lastSession, last != info.sessionID { state.earlierSessions.insert(last) }
                        state.lastSession = info.sessionID
                        guard !state.left, let desired = state.desired else { return false }
                        return desired.publishedGeneration != info.generation
                    }
                    if republish {
                        try? await self.publishing.withLock {
                            // Decided again under the lock: a payload change that held it may
                            // have published on this session already.
                            let stillWanted = self.state.withLock { state in
                                !state.left && state.desired != nil && state.desired?.publishedGeneration != info.generation
                            }
                            if stillWanted { try await self.publish() }
                        }
                    }
                case .closed:
                    return
                default:
                    continue
                }
            }
        }
        state.withLock { state in
            if state.keeper == nil && !state.left { state.keeper = keeper } else { keeper.cancel() }
        }
    }

    /// The group's members as a stream of full snapshots (member id → payload).
    public func members() -> MembershipChanges {
        MembershipChanges(client: client, group: group)
    }

    /// Waits until the members have not changed for `quietPeriod`, and returns them (sequins'
    /// `time_to_converge`, see ``ConvergenceWait``): a quiet period after the call when nothing
    /// changes, longer while members come and go.
    public func awaitStable(quietPeriod: Duration) async throws -> [String: [UInt8]] {
        let snapshots = members()
        let wait = ConvergenceState(ConvergenceWait(startedAt: ContinuousClock.now, quietPeriod: quietPeriod))
        let (arrivals, arrived) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        return try await withThrowingTaskGroup(of: [String: [UInt8]]?.self) { group in
            group.addTask {
                for try await snapshot in snapshots {
                    wait.withLock { $0.record(snapshot, at: .now) }
                    arrived.yield()
                }
                return nil
            }
            group.addTask {
                var arrival = arrivals.makeAsyncIterator()
                while true {
                    let (converged, deadline, hasSnapshot) = wait.withLock { ($0.converged(at: .now), $0.deadline, $0.members != nil) }
                    if let converged { return converged }
                    if hasSnapshot {
                        try await Task.sleep(until: deadline)  // a change meanwhile moves the deadline: look again
                    } else {
                        _ = await arrival.next()
                        try Task.checkCancellation()
                    }
                }
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }
}

/// A ``ConvergenceWait`` shared between the task reading snapshots and the one waiting.
private final class ConvergenceState: Sendable {
    private let state: Mutex<ConvergenceWait<ContinuousClock.Instant>>
    init(_ wait: ConvergenceWait<ContinuousClock.Instant>) { state = Mutex(wait) }
    func withLock<R: Sendable>(_ body: (inout ConvergenceWait<ContinuousClock.Instant>) -> R) -> R { state.withLock { body(&$0) } }
}

/// A group's members over time: full snapshots (member id → payload), a new one whenever a
/// member joins, leaves or changes its payload. See ``MembershipWatcher/members()``.
///
/// Each iterator follows the group with a ``TreeCache`` of depth 1 of its own: a change costs the
/// read of what changed, never a re-read of the group; after an expired session the group is
/// read again and only a snapshot that differs is delivered. A consumer that falls behind gets
/// the latest snapshot, not every one in between.
public struct MembershipChanges: AsyncSequence, Sendable {
    public typealias Element = [String: [UInt8]]
    public typealias Failure = any Error
    let client: ZooKeeperClient
    let group: String

    /// Iterates the snapshots; each iterator follows the group on its own.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var snapshots: AsyncThrowingStream<[String: [UInt8]], any Error>.AsyncIterator

        /// The next snapshot that differs from the last one; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> [String: [UInt8]]? {
            try await snapshots.next()
        }

        /// The next snapshot, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> [String: [UInt8]]? {
            try await snapshots.next(isolation: actor)
        }
    }

    /// Starts following the group.
    public func makeAsyncIterator() -> AsyncIterator {
        let (stream, continuation) = AsyncThrowingStream<[String: [UInt8]], any Error>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let cache = TreeCache(client: client, path: group, maxDepth: 1)
        let group = self.group
        let follower = Task {
            var events = cache.events().makeAsyncIterator()
            cache.start()
            var initialized = false
            var last: [String: [UInt8]]?
            do {
                while let event = try await events.next() {
                    if event == .initialized { initialized = true }
                    guard initialized else { continue }
                    let snapshot = Self.members(of: group, in: cache.snapshot())
                    if snapshot != last {
                        last = snapshot
                        continuation.yield(snapshot)
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
            await cache.close()
        }
        continuation.onTermination = { _ in follower.cancel() }
        return AsyncIterator(snapshots: stream.makeAsyncIterator())
    }

    /// The children of `group` in a tree cache's snapshot, by name.
    static func members(of group: String, in nodes: [String: NodeData]) -> [String: [UInt8]] {
        let prefix = group == "/" ? "/" : group + "/"
        var members: [String: [UInt8]] = [:]
        for (path, node) in nodes where path.hasPrefix(prefix) {
            members[String(path.dropFirst(prefix.count))] = node.bytes
        }
        return members
    }
}
