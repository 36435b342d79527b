import Synchronization
import ZooKeeper

/// Whether this node may answer: a member, connected to ZooKeeper, that has seen its own member
/// znode (owned by its session) within the standing ``lease``. The coordinator waits one lease
/// after expelling a member before it acknowledges, so an expelled node has stopped answering by
/// then.
final class MemberStanding: Sendable {
    /// How long a confirmation of membership lets this node serve.
    static let lease: Duration = .seconds(1)
    /// How often a member confirms its membership.
    static let confirmInterval: Duration = .milliseconds(250)

    private struct State {
        /// When this node last saw its own member znode; nil while it is not a member (joining,
        /// expelled, stepped down).
        var confirmedAt: ContinuousClock.Instant?
        /// Set when this node steps down: the confirmation loop ends the membership.
        var steppedDown = false
    }
    private let state = Mutex(State())
    private let context: NodeContext

    init(context: NodeContext) {
        self.context = context
    }

    /// This node registered; `registeredAt` is when the registration was sent (a node paused
    /// between its registration and this call starts its standing then, not when it resumes).
    func joined(registeredAt: ContinuousClock.Instant) {
        state.withLock { $0 = State(confirmedAt: registeredAt, steppedDown: false) }
    }

    /// Stops serving as a member (nothing is answered until the next join).
    func left() {
        state.withLock { $0.confirmedAt = nil }
    }

    /// Leaves the cluster at once (to resync): stops serving, and the confirmation loop ends the
    /// membership (the next join removes the member znode before it compares and syncs).
    func stepDown() {
        state.withLock { $0 = State(confirmedAt: nil, steppedDown: true) }
    }

    var isMember: Bool { state.withLock { $0.confirmedAt != nil } }

    /// Whether the membership goes on: not stepped down, and the member znode not seen gone
    /// (`sync` then `exists`; no answer, while disconnected, is not an end).
    func stillMember() async throws -> Bool {
        guard !state.withLock({ $0.steppedDown }) else { return false }
        return try await confirm() != false
    }

    /// Whether this node may answer requests: a member, connected, with its membership confirmed
    /// within the lease (confirmed now when the last confirmation is older, e.g. after a pause).
    func inGoodStanding() async -> Bool {
        guard let confirmedAt = state.withLock({ $0.confirmedAt }), context.client.state.isConnected else { return false }
        if ContinuousClock.now - confirmedAt < Self.lease { return true }
        return (try? await confirm()) == true
    }

    /// `true`: confirmed; `false`: the membership is gone; `nil`: no answer (not connected).
    private func confirm() async throws -> Bool? {
        let client = context.client
        guard let session = client.state.session, client.state.isConnected else { return nil }
        let sent = ContinuousClock.now
        do {
            // `sync` first: the server we read from may lag behind the leader, and must not show
            // us a member znode the coordinator already deleted.
            try await client.sync(context.layout.members)
            guard let stat = try await client.exists(context.layout.member(context.id)), stat.ephemeralOwner == session.sessionID else { return false }
            state.withLock { if $0.confirmedAt != nil { $0.confirmedAt = sent } }
            return true
        } catch let error as ZooKeeperError where error.isTransient {
            return nil
        }
    }
}
