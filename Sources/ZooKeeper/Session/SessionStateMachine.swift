/// The session's life as a pure state machine: C-client events, timer expiries and user requests go
/// in, ``Action``s come out. It does no I/O and reads no clock; ``ZooKeeperClient`` carries out the
/// actions (opening and closing C handles, scheduling the presumed-expiry timer, publishing states).
struct SessionStateMachine: Sendable {
    /// What the C client reported on the session watcher.
    enum HandleEvent: Sendable, Hashable {
        case connecting
        case associating
        case connected(sessionID: Int64, negotiatedTimeout: Duration)
        case connectedReadOnly(sessionID: Int64, negotiatedTimeout: Duration)
        case expired
        case authFailed
    }

    /// Something the shell must do, in order.
    enum Action: Sendable, Hashable {
        /// Publish a state on the session event stream.
        case publish(SessionState)
        /// Open a new C handle for session generation `generation`.
        case openHandle(generation: Int)
        /// Close the C handle of `generation` (off the cooperative pool), failing its watches with `error`.
        case closeHandle(generation: Int, error: FailureReason)
        /// Call ``presumedExpiryTimerFired(token:)`` with `token` after `delay`.
        case schedulePresumedExpiry(after: Duration, token: Int)
        /// Open a handle again after `delay` (the C client could not create one).
        case retryOpen(generation: Int, after: Duration)
    }

    enum FailureReason: Sendable, Hashable {
        case sessionExpired, closed, authFailed
    }

    enum State: Sendable, Hashable {
        case idle
        case connecting(generation: Int)
        case connected(SessionInfo)
        case readOnly(SessionInfo)
        case suspended(SessionInfo, timerToken: Int)
        case presumedExpired(SessionInfo)
        /// Expired and not reopening (``ZooKeeperClient/Configuration/reconnectAfterExpiry`` is off).
        case expired(SessionInfo)
        case authFailed(generation: Int)
        case closed
    }

    private(set) var state: State = .idle
    /// The generation of the handle currently open (events from older handles are ignored).
    private(set) var generation = 0
    private var nextTimerToken = 0
    let reconnectAfterExpiry: Bool

    init(reconnectAfterExpiry: Bool) {
        self.reconnectAfterExpiry = reconnectAfterExpiry
    }

    /// The state as published on the event stream.
    var publicState: SessionState {
        switch state {
        case .idle, .connecting: return .connecting
        case .connected(let info): return .connected(info)
        case .readOnly(let info): return .readOnly(info)
        case .suspended(let info, _): return .suspended(info)
        case .presumedExpired(let info): return .presumedExpired(info)
        case .expired(let info): return .expired(info)
        case .authFailed: return .authFailed
        case .closed: return .closed
        }
    }


    mutating func start() -> [Action] {
        guard case .idle = state else { return [] }
        generation = 1
        state = .connecting(generation: 1)
        return [.publish(.connecting), .openHandle(generation: 1)]
    }

    mutating func handleOpenFailed(generation handleGeneration: Int) -> [Action] {
        guard handleGeneration == generation, case .connecting = state else { return [] }
        return [.retryOpen(generation: generation, after: .seconds(1))]
    }

    mutating func handleEvent(_ event: HandleEvent, generation handleGeneration: Int) -> [Action] {
        guard handleGeneration == generation else { return [] }
        switch (state, event) {
        case (.closed, _), (.idle, _), (.expired, _), (.authFailed, _):
            return []

        case (_, .associating):
            return []

        case (.connecting(let gen), .connected(let id, let timeout)):
            let info = SessionInfo(sessionID: id, negotiatedTimeout: timeout, generation: gen)
            state = .connected(info)
            return gen > 1 ? [.publish(.newSession(info)), .publish(.connected(info))] : [.publish(.connected(info))]
        case (.connecting(let gen), .connectedReadOnly(let id, let timeout)):
            let info = SessionInfo(sessionID: id, negotiatedTimeout: timeout, generation: gen)
            state = .readOnly(info)
            return gen > 1 ? [.publish(.newSession(info)), .publish(.readOnly(info))] : [.publish(.readOnly(info))]

        case (.connected(let old), .connected(let id, let timeout)),
            (.readOnly(let old), .connected(let id, let timeout)),
            (.suspended(let old, _), .connected(let id, let timeout)),
            (.presumedExpired(let old), .connected(let id, let timeout)):
            let info = SessionInfo(sessionID: id, negotiatedTimeout: timeout, generation: old.generation)
            if case .connected(info) = state { return [] }
            state = .connected(info)
            return [.publish(.connected(info))]

        case (.connected(let old), .connectedReadOnly(let id, let timeout)),
            (.readOnly(let old), .connectedReadOnly(let id, let timeout)),
            (.suspended(let old, _), .connectedReadOnly(let id, let timeout)),
            (.presumedExpired(let old), .connectedReadOnly(let id, let timeout)):
            let info = SessionInfo(sessionID: id, negotiatedTimeout: timeout, generation: old.generation)
            if case .readOnly(info) = state { return [] }
            state = .readOnly(info)
            return [.publish(.readOnly(info))]

        case (.connecting, .connecting), (.suspended, .connecting), (.presumedExpired, .connecting):
            return []
        case (.connected(let info), .connecting), (.readOnly(let info), .connecting):
            nextTimerToken += 1
            state = .suspended(info, timerToken: nextTimerToken)
            return [
                .publish(.suspended(info)),
                .schedulePresumedExpiry(after: Self.presumedExpiryDelay(info.negotiatedTimeout), token: nextTimerToken),
            ]

        case (.connecting(let gen), .expired):
            // Only possible when resuming a session that is already gone.
            return expire(SessionInfo(sessionID: 0, negotiatedTimeout: .zero, generation: gen))
        case (.connected(let info), .expired), (.readOnly(let info), .expired),
            (.suspended(let info, _), .expired), (.presumedExpired(let info), .expired):
            return expire(info)

        case (_, .authFailed):
            let gen = generation
            state = .authFailed(generation: gen)
            return [.publish(.authFailed), .closeHandle(generation: gen, error: .authFailed)]
        }
    }

    private mutating func expire(_ info: SessionInfo) -> [Action] {
        let old = generation
        guard reconnectAfterExpiry else {
            state = .expired(info)
            return [.publish(.expired(info)), .closeHandle(generation: old, error: .sessionExpired)]
        }
        generation += 1
        state = .connecting(generation: generation)
        return [
            .publish(.expired(info)),
            .closeHandle(generation: old, error: .sessionExpired),
            .publish(.connecting),
            .openHandle(generation: generation),
        ]
    }

    /// How long after losing the connection the session is presumed expired (see
    /// ``SessionInfo/presumedExpiryDelay``).
    static func presumedExpiryDelay(_ negotiatedTimeout: Duration) -> Duration {
        // A third of the timeout is when the server's timer can run out at the earliest; a fifth
        // of that window is kept as margin for timer and scheduling delays on both sides.
        negotiatedTimeout * 4 / 15
    }

    mutating func presumedExpiryTimerFired(token: Int) -> [Action] {
        guard case .suspended(let info, let current) = state, current == token else { return [] }
        state = .presumedExpired(info)
        return [.publish(.presumedExpired(info))]
    }

    mutating func close() -> [Action] {
        switch state {
        case .closed:
            return []
        case .idle, .expired, .authFailed:
            // No handle is open (never started, or already closed when the session ended).
            state = .closed
            return [.publish(.closed)]
        default:
            let gen = generation
            state = .closed
            return [.closeHandle(generation: gen, error: .closed), .publish(.closed)]
        }
    }
}
