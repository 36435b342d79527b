import ZooKeeper

/// Leader election among participants on one ZooKeeper path, with terms, fencing and observers.
///
/// It is the lock algorithm (one holder) with the participant's id and payload in its node:
/// ``campaign(payload:timeout:)`` waits until this participant leads and returns its
/// ``Leadership`` term; ``observe()`` streams the current leader for anyone (participants or not).
///
/// Leadership is claimed only after checking that the current session owns the node, so a client
/// that reconnects after an expiry and still sees its old node cannot lead through it
/// (CURATOR-696). A leader steps down on session loss as its ``LossPolicy`` says.
///
/// Candidates' nodes are Apache Curator's, so Swift and Java participants can share one election:
/// with ``Layout/leaderSelector`` (the default) they are `LeaderSelector`'s (`_c_<uuid>-lock-<seq>`),
/// with ``Layout/leaderLatch`` `LeaderLatch`'s (`_c_<uuid>-latch-<seq>`); the lowest sequence leads
/// in both. A node holds the participant's id, as Curator's do; a participant that publishes a
/// payload too stores `<id>\0<payload>`, which a Curator participant reads as its id.
///
/// ```swift
/// let election = LeaderElection(client: client, path: "/services/scheduler/leader", participantID: host)
/// try await election.whileLeader(payload: Array(address.utf8)) { term in
///     try await runScheduler(fencingToken: term.epoch)   // cancelled when leadership is lost
/// }
/// ```
public final class LeaderElection: Sendable {
    /// How a participant behaves.
    public struct Configuration: Sendable {
        /// When a leader must step down. Default: ``LossPolicy/onPresumedExpired``
        /// (``LossPolicy/onSuspended`` steps down at the first disconnect).
        public var lossPolicy: LossPolicy = .onPresumedExpired
        /// The ACL of the election's node and of the candidates' nodes. Default: open to anyone.
        public var acl: [ACL] = ACL.openUnsafe
        /// Whose candidate nodes this participant makes: Curator's `LeaderSelector`'s or
        /// `LeaderLatch`'s (one election path holds one kind). Default: ``Layout/leaderSelector``.
        public var layout: Layout = .leaderSelector
        /// The defaults: step down when the session is presumed expired; open ACL; LeaderSelector's nodes.
        public init() {}
    }

    /// The candidate nodes of one election path, as an Apache Curator recipe names them.
    public enum Layout: Sendable, Hashable {
        /// `LeaderSelector`: `_c_<uuid>-lock-<seq>`.
        case leaderSelector
        /// `LeaderLatch`: `_c_<uuid>-latch-<seq>`.
        case leaderLatch

        var lockName: String { self == .leaderSelector ? "lock-" : "latch-" }
    }

    /// One candidate of an election, in queue order (see ``participants()``).
    public struct Participant: Sendable, Hashable {
        /// The candidate's id.
        public var id: String
        /// Whether it leads (the first in the queue).
        public var isLeader: Bool
    }

    /// The client the election uses.
    public let client: ZooKeeperClient
    /// The election's node; candidates are its children.
    public let path: String
    /// This participant's id, as observers see it in ``LeaderInfo/participantID``.
    public let participantID: String
    /// How this participant behaves.
    public let configuration: Configuration

    /// A participant in the election at `path` (nothing is written until it campaigns).
    public init(client: ZooKeeperClient, path: String, participantID: String, configuration: Configuration = Configuration()) {
        self.client = client
        self.path = path
        self.participantID = participantID
        self.configuration = configuration
    }

    var contender: QueueContender {
        QueueContender(client: client, parent: path, lockName: configuration.layout.lockName, maxHolders: 1, acl: configuration.acl)
    }

    /// The candidates now, in queue order: the leader first (Curator's `getParticipants()`).
    public func participants() async throws -> [Participant] {
        let queue = LockQueue.queue(try await client.childrenIfExists(path))
        let replies = queue.map { client.submitGetData(ZooKeeperPath.join(path, $0.name)) }
        var participants: [Participant] = []
        for reply in replies {
            do {
                let node = try await reply.value()
                participants.append(Participant(id: LeaderInfo.decode(node.bytes, epoch: node.stat.czxid).participantID, isLeader: participants.isEmpty))
            } catch let error as ZooKeeperError where error.code == .noNode {}  // left meanwhile
        }
        return participants
    }

    /// Campaigns again and again: runs `body` while leading, and when the term ends (`body`
    /// returned, or leadership was lost) enters the queue again (Curator's `autoRequeue`). Returns
    /// only by throwing: `CancellationError` when the calling task is cancelled, `.closed` when
    /// the client closes, `.invalidPath` for an invalid election path; an error `body` throws
    /// ends the term, not the loop. After a term or a campaign that ended with an error, it
    /// waits before campaigning again (after a lost connection, for the connection first), from
    /// 50 ms doubling up to 5 s while they keep failing within 5 s each, so that a body that fails
    /// at once, a campaign the server refuses (an ACL) or throttles, does not spin.
    public func leadEveryTerm(payload: [UInt8] = [], _ body: @escaping @Sendable (Leadership) async throws -> Void) async throws -> Never {
        try ZooKeeperPath.validate(path)
        var failures = 0
        while true {
            try Task.checkCancellation()
            let started = ContinuousClock.now
            do {
                try await whileLeader(payload: payload, body)
                failures = 0
            } catch let error as ZooKeeperError where error.code == .closed {
                throw error
            } catch is CancellationError where Task.isCancelled {
                throw CancellationError()
            } catch {
                // The term ended (lost, or body failed), or the campaign failed: campaign again,
                // once connected. (A long term that ends in a loss starts the count again.)
                if let error = error as? ZooKeeperError, error.isTransient { try await client.waitUntilConnected() }
                if ContinuousClock.now - started >= .seconds(5) { failures = 0 }
                failures += 1
                try await Task.sleep(for: Self.pauseAfter(failures: failures))
            }
        }
    }

    /// The wait before campaigning again after `failures` terms or campaigns in a row ended with
    /// an error: 50 ms, doubling, at most 5 s.
    static func pauseAfter(failures: Int) -> Duration {
        min(.milliseconds(50) * (1 << min(max(failures - 1, 0), 7)), .seconds(5))
    }

    /// Joins the election and waits until this participant leads.
    /// - Throws: ``CoordinationError/Code/timedOut``, `CancellationError`, `ZooKeeperError`; our
    ///   candidate node is deleted in every such case.
    public func campaign(payload: [UInt8] = [], timeout: Duration? = nil) async throws -> Leadership {
        let data = LeaderInfo.encode(participantID: participantID, payload: payload)
        return try await recipeSpan("election.campaign", path: path) {
            let node = try await contender.acquire(data: data, deadline: timeout.map { ContinuousClock.now + $0 })
            return Leadership(election: self, node: node)
        }
    }

    /// Campaigns, runs `body` while leading, cancels it when leadership is lost, then resigns.
    /// - Throws: ``CoordinationError/Code/lost`` if the body was cancelled by a loss; what `body` throws.
    @discardableResult
    public func whileLeader<R: Sendable>(
        payload: [UInt8] = [], timeout: Duration? = nil, _ body: @escaping @Sendable (Leadership) async throws -> R
    ) async throws -> R {
        let term = try await campaign(payload: payload, timeout: timeout)
        return try await term.hold.run({ try await body(term) }, endingWith: contender, lostError: term.lostError)
    }

    /// The current leader as a stream: the leader now (or ``LeaderState/vacant``), then every
    /// change of leader or of its payload. Works for participants and pure observers; resyncs after
    /// reconnects and new sessions; throws `.closed` when the client closes.
    public func observe() -> LeaderUpdates {
        LeaderUpdates(client: client, path: path)
    }

    /// The current leader, read once.
    public func currentLeader() async throws -> LeaderInfo? {
        try await LeaderUpdates.readLeader(client: client, path: path, among: client.childrenIfExists(path), watching: false)?.info
    }
}

/// Who leads: the participant id, its payload, and its term's epoch.
public struct LeaderInfo: Sendable, Hashable {
    /// The leader's participant id.
    public var participantID: String
    /// What the leader published with it (for example its address).
    public var payload: [UInt8]
    /// Grows with every new term (the czxid of the leader's node).
    public var epoch: Int64

    static func encode(participantID: String, payload: [UInt8]) -> [UInt8] {
        payload.isEmpty ? Array(participantID.utf8) : Array(participantID.utf8) + [0] + payload
    }

    static func decode(_ bytes: [UInt8], epoch: Int64) -> LeaderInfo {
        guard let separator = bytes.firstIndex(of: 0) else {
            return LeaderInfo(participantID: String(decoding: bytes, as: UTF8.self), payload: [], epoch: epoch)
        }
        return LeaderInfo(
            participantID: String(decoding: bytes[..<separator], as: UTF8.self),
            payload: Array(bytes[(separator + 1)...]), epoch: epoch)
    }
}

/// One term of leadership. Resign it exactly once (``resign()``); ``LeaderElection/whileLeader(payload:timeout:_:)`` does.
public final class Leadership: Sendable {
    /// The election this term belongs to.
    public let election: LeaderElection
    let hold: Hold

    init(election: LeaderElection, node: ContenderNode) {
        self.election = election
        hold = Hold(client: election.client, node: node, policy: election.configuration.lossPolicy)
    }

    /// Our candidate node.
    public var node: ContenderNode { hold.node }

    /// The term's epoch: grows with every new term; use it as a fencing token.
    public var epoch: Int64 { node.czxid }

    /// Whether this participant may still act as leader.
    public var isLeader: Bool { hold.isActive }

    /// Waits until the term ends and says why (`nil` if the waiting task is cancelled first).
    /// From the first call on, our node is watched too, so its deletion by anyone ends the term.
    public func waitUntilLost() async -> LossReason? {
        await hold.waitUntilEnded()
    }

    /// Replaces the leader's payload, only while this term lasts.
    /// - Throws: ``CoordinationError/Code/lost`` when the term has ended (nothing is written).
    public func proclaim(_ payload: [UInt8]) async throws {
        guard isLeader else { throw lostError() }
        let data = LeaderInfo.encode(participantID: election.participantID, payload: payload)
        do {
            // Our node exists only while we lead; the multi fails as a whole if it is gone.
            _ = try await election.client.multi([.check(path: node.path), .setData(path: node.path, data: data)])
        } catch let error as ZooKeeperError where error.code == .noNode {
            hold.ended.set(.nodeDeleted)
            throw lostError()
        }
    }

    /// Gives up leadership: sends the delete of our node before returning, and retries it in the
    /// background until the node or its session is gone.
    public func resign() async {
        await hold.end(removingWith: election.contender)
    }

    func lostError() -> CoordinationError {
        hold.lostError("leadership ended")
    }
}

/// Who leads an election at one moment.
public enum LeaderState: Sendable, Hashable {
    /// This participant leads.
    case leader(LeaderInfo)
    /// Nobody leads: no participant is in the queue (or the election's node does not exist).
    case vacant

    /// The leader, or `nil` when vacant.
    public var leader: LeaderInfo? {
        if case .leader(let info) = self { return info }
        return nil
    }
}

/// The leader of an election over time (see ``LeaderElection/observe()``): the state now, then
/// every change of leader or of its payload.
public struct LeaderUpdates: AsyncSequence, Sendable {
    public typealias Element = LeaderState
    public typealias Failure = any Error
    let client: ZooKeeperClient
    let path: String

    /// Iterates the leader states; each iterator follows the election on its own.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<LeaderState, any Error>.AsyncIterator

        /// The next state; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> LeaderState? { try await base.next() }

        /// The next state, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> LeaderState? {
            try await base.next(isolation: actor)
        }
    }

    /// Starts following the election: reads the leader and watches for changes.
    public func makeAsyncIterator() -> AsyncIterator {
        let client = self.client
        let path = self.path
        let (stream, output) = AsyncThrowingStream<LeaderState, any Error>.makeStream()
        let producer = Task {
            var last: LeaderState?
            // The watches set and not fired yet, with what was read when they were set: the
            // children (who leads) and the leader's data (its payload). Each is set again only
            // once it fired: setting both on every change would pile up one-shot watches that
            // never fire (the leader's data watch, at every change of the followers).
            var childrenWatch: (names: [String], watch: NodeWatch)?
            var leaderWatch: (node: String, info: LeaderInfo, watch: NodeWatch)?
            do {
                while true {
                    try Task.checkCancellation()
                    do {
                        var watches: [NodeWatch] = []
                        let state: LeaderState
                        do {
                            if childrenWatch == nil {
                                let (children, watch) = try await client.getChildrenAndWatch(path)
                                childrenWatch = (children.names, watch)
                            }
                            let (names, watch) = childrenWatch!
                            watches.append(watch)
                            if let leader = leaderWatch, leader.node == LockQueue.queue(names).first?.name {
                                state = .leader(leader.info)
                                watches.append(leader.watch)
                            } else if let read = try await Self.readLeader(client: client, path: path, among: names, watching: true), let watch = read.watch {
                                leaderWatch = (read.node, read.info, watch)
                                state = .leader(read.info)
                                watches.append(watch)
                            } else {
                                leaderWatch = nil
                                state = .vacant
                            }
                        } catch let error as ZooKeeperError where error.code == .noNode {
                            (childrenWatch, leaderWatch) = (nil, nil)
                            let (stat, creation) = try await client.existsAndWatch(path)
                            if stat != nil { continue }
                            watches.append(creation)
                            state = .vacant
                        }
                        if last != state {
                            output.yield(state)
                            last = state
                        }
                        // The first watch is the children's (or the creation's), the second the leader's data.
                        if try await Self.firstEvent(of: watches) == 0 { childrenWatch = nil } else { leaderWatch = nil }
                    } catch let error as ZooKeeperError where error.isTransient {
                        // Watches of an expired session are gone: set them all again.
                        (childrenWatch, leaderWatch) = (nil, nil)
                        try await Task.sleep(for: .milliseconds(50))  // back off; the state event may lag the error
                        try await client.waitUntilConnected()
                    }
                }
            } catch is CancellationError {
                output.finish()
            } catch {
                output.finish(throwing: error)
            }
        }
        output.onTermination = { _ in producer.cancel() }
        return AsyncIterator(base: stream.makeAsyncIterator())
    }

    /// Returns when any of `watches` fires (or fails).
    /// Waits for the first of `watches` to fire; its position.
    private static func firstEvent(of watches: [NodeWatch]) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for (position, watch) in watches.enumerated() {
                group.addTask {
                    _ = try await watch.triggered()
                    return position
                }
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// The first candidate among `candidates` (children of the election at `path`) whose node is
    /// still there, and what it published, with a data watch on it when `watching`; `nil` when
    /// none is left.
    static func readLeader(
        client: ZooKeeperClient, path: String, among candidates: [String], watching: Bool
    ) async throws -> (node: String, info: LeaderInfo, watch: NodeWatch?)? {
        var names = candidates
        while let first = LockQueue.queue(names).first {
            let node = ZooKeeperPath.join(path, first.name)
            do {
                if watching {
                    let (data, watch) = try await client.getDataAndWatch(node)
                    return (first.name, LeaderInfo.decode(data.bytes, epoch: data.stat.czxid), watch)
                }
                let data = try await client.getData(node)
                return (first.name, LeaderInfo.decode(data.bytes, epoch: data.stat.czxid), nil)
            } catch let error as ZooKeeperError where error.code == .noNode {
                names.removeAll { $0 == first.name }
            }
        }
        return nil
    }
}
