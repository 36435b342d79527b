import Synchronization
import ZooKeeper

/// Group membership on a ZooKeeper path: publish this process as a member, and watch the group.
///
/// - ``join(memberID:payload:waitingForOtherSession:)`` publishes the ephemeral node `<group>/<memberID>` with `payload`.
///   A node already there is adopted only if the current session owns it; one left by an earlier
///   session of this client is waited out; one held by another live session is waited out for
///   `waitingForOtherSession` (a restarted process finds its crashed predecessor's node until the
///   server expires that session), then is a ``CoordinationError/Code/duplicateMember`` error.
/// - After a new session the member is published again, with the latest payload; after
///   ``leave()`` it is never published again.
/// - ``members()`` streams full snapshots (member id → payload), re-armed after every event and
///   resynchronised after reconnects and new sessions; ``awaitStable(quietPeriod:)`` returns the
///   members once they have not changed for a quiet period.
public final class MembershipWatcher: Sendable {
    public let client: ZooKeeperClient
    /// The group's node; members are its children.
    public let group: String

    private struct Desired: Sendable {
        var memberID: String
        var payload: [UInt8]
        /// The session generation the node was last published on.
        var publishedGeneration: Int?
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
    /// Serialises join, updatePayload, leave and republishing.
    private let publishing = AsyncLock()

    /// The ACL of this member's node (and of the group's node when the join creates it).
    public let acl: [ACL]

    public init(client: ZooKeeperClient, group: String, acl: [ACL] = ACL.openUnsafe) {
        self.client = client
        self.group = group
        self.acl = acl
    }

    deinit {
        state.withLock { $0.keeper?.cancel() }
    }

    /// The member id this process joined with, if it is a member.
    public var memberID: String? { state.withLock { $0.left ? nil : $0.desired?.memberID } }

    /// Publishes this process as `memberID` with `payload`, and keeps it published across new
    /// sessions until ``leave()``.
    /// - Throws: ``CoordinationError/Code/duplicateMember`` when another live session holds the id;
    ///   ``CoordinationError/Code/closed`` after ``leave()``; ``ZooKeeperError``.
    public func join(memberID: String, payload: [UInt8] = [], waitingForOtherSession: Duration = .zero) async throws {
        try ZooKeeperPath.validate(ZooKeeperPath.join(group, memberID))
        try await publishing.withLock {
            try state.withLock { state in
                if state.left { throw CoordinationError(.closed, path: group, message: "this watcher has left the group") }
                state.desired = Desired(memberID: memberID, payload: payload)
            }
            try await publish(otherSessionDeadline: .now + waitingForOtherSession)
        }
        startKeeper()
    }

    /// Replaces this member's payload (also used when it is published again after a new session).
    public func updatePayload(_ payload: [UInt8]) async throws {
        try await publishing.withLock {
            let path = try state.withLock { state -> String in
                guard !state.left, state.desired != nil else {
                    throw CoordinationError(.notHeld, path: group, message: "not a member: join first")
                }
                state.desired!.payload = payload
                return ZooKeeperPath.join(group, state.desired!.memberID)
            }
            do {
                try await client.setData(path, data: payload)
            } catch let error as ZooKeeperError where error.code == .noNode || error.isRetryable || error.code == .sessionExpired {
                try await publish()  // not published right now: publish with the new payload
            }
        }
    }

    /// Leaves the group: forgets the membership first (so nothing republishes it), then deletes the node.
    public func leave() async throws {
        let (path, keeper) = await publishing.withLock {
            state.withLock { state -> (String?, Task<Void, Never>?) in
                state.left = true
                defer { state.keeper = nil }
                return (state.desired.map { ZooKeeperPath.join(group, $0.memberID) }, state.keeper)
            }
        }
        keeper?.cancel()
        guard let path else { return }
        do {
            try await client.delete(path)
        } catch let error as ZooKeeperError where error.code == .noNode || error.code == .sessionExpired || error.code == .closed {}
    }

    /// Waits for `watch` to fire or for `deadline`, whichever comes first.
    private static func waitForTrigger(_ watch: NodeWatch, until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await watch.triggered() }
            group.addTask { try? await Task.sleep(until: deadline) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Creates (or adopts) the member node for the desired state, waiting until
    /// `otherSessionDeadline` for a node another session holds to go. Call under `publishing`.
    private func publish(otherSessionDeadline: ContinuousClock.Instant = .now) async throws {
        while true {
            guard let (desired, earlier) = state.withLock({ state -> (Desired, Set<Int64>)? in
                guard !state.left, let desired = state.desired else { return nil }
                return (desired, state.earlierSessions)
            }) else { return }
            let path = ZooKeeperPath.join(group, desired.memberID)
            guard let session = client.state.session, client.state.isConnected else {
                try await client.waitUntilConnected()
                continue
            }
            do {
                try await client.create(path, data: desired.payload, mode: .ephemeral, acl: acl, parents: .persistent)
                markPublished(generation: session.generation)
                return
            } catch let error as ZooKeeperError where error.code == .nodeExists {
                guard let stat = try await client.exists(path) else { continue }
                if stat.ephemeralOwner == session.sessionID {
                    try await client.setData(path, data: desired.payload)  // ours: adopt it
                    markPublished(generation: session.generation)
                    return
                }
                if earlier.contains(stat.ephemeralOwner) {
                    // Left by an earlier session of ours: the server deletes it soon. Wait it out.
                    let (still, watch) = try await client.existsAndWatch(path)
                    if still != nil { _ = try await watch.triggered() }
                    continue
                }
                if ContinuousClock.now < otherSessionDeadline {
                    // Another session's: wait (until the deadline) for it to go, then try again.
                    let (still, watch) = try await client.existsAndWatch(path)
                    if still != nil { await Self.waitForTrigger(watch, until: otherSessionDeadline) }
                    continue
                }
                throw CoordinationError(
                    .duplicateMember, path: path,
                    message: "member id \(desired.memberID) is held by another live session (0x\(String(UInt64(bitPattern: stat.ephemeralOwner), radix: 16)))")
            } catch let error as ZooKeeperError where error.isRetryable || error.code == .sessionExpired {
                try await Task.sleep(for: .milliseconds(50))
                try await client.waitUntilConnected()
            }
        }
    }

    private func markPublished(generation: Int) {
        state.withLock { $0.desired?.publishedGeneration = generation }
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
                        try? await self.publishing.withLock { try await self.publish() }
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
    /// `time_to_converge`).
    public func awaitStable(quietPeriod: Duration) async throws -> [String: [UInt8]] {
        let snapshots = members()
        let latest = LatestSnapshot()
        return try await withThrowingTaskGroup(of: [String: [UInt8]]?.self) { group in
            group.addTask {
                for try await snapshot in snapshots { latest.record(snapshot) }
                return nil
            }
            group.addTask {
                // Stable when a whole quiet period passed without a new snapshot.
                var seen = -1
                while true {
                    let (members, version) = latest.current
                    if version > 0 && version == seen { return members }
                    seen = version
                    try await Task.sleep(for: quietPeriod)
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

/// The newest membership snapshot and how many have been seen.
private final class LatestSnapshot: Sendable {
    private let state = Mutex<(members: [String: [UInt8]], version: Int)>(([:], 0))
    func record(_ members: [String: [UInt8]]) { state.withLock { $0 = (members, $0.version + 1) } }
    var current: (members: [String: [UInt8]], version: Int) { state.withLock { $0 } }
}

/// A group's members over time: full snapshots (member id → payload). See
/// ``MembershipWatcher/members()``.
public struct MembershipChanges: AsyncSequence, Sendable {
    public typealias Element = [String: [UInt8]]
    let client: ZooKeeperClient
    let group: String

    public struct AsyncIterator: AsyncIteratorProtocol {
        var children: ChildrenUpdates.AsyncIterator
        let client: ZooKeeperClient
        let group: String
        var last: [String: [UInt8]]?

        public mutating func next() async throws -> [String: [UInt8]]? {
            while let update = try await children.next() {
                var snapshot: [String: [UInt8]] = [:]
                if case .children(let children) = update {
                    // Pipelined: every member's data in one round trip.
                    let replies = children.names.map { ($0, client.submitGetData(ZooKeeperPath.join(group, $0))) }
                    for (name, reply) in replies {
                        if let data = try? await reply.value() { snapshot[name] = data.bytes }
                    }
                }
                if snapshot != last {
                    last = snapshot
                    return snapshot
                }
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(children: client.childrenUpdates(group).makeAsyncIterator(), client: client, group: group)
    }
}
