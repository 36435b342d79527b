/// A connected session: its server-assigned id, the timeout the server granted, and the
/// client-side generation (1 for the first session, incremented for each new session after expiry).
public struct SessionInfo: Sendable, Hashable, CustomStringConvertible {
    /// The session's id, as the server assigned it.
    public var sessionID: Int64
    /// The session timeout the server granted.
    public var negotiatedTimeout: Duration
    /// 1 for the client's first session, then one more for each new session after an expiry.
    public var generation: Int

    /// A session as the client reports it.
    public init(sessionID: Int64, negotiatedTimeout: Duration, generation: Int) {
        self.sessionID = sessionID
        self.negotiatedTimeout = negotiatedTimeout
        self.generation = generation
    }

    /// How long after ``SessionState/suspended(_:)`` this session is presumed expired:
    /// 4/15 of the negotiated timeout.
    ///
    /// The server expires a session one negotiated timeout after the last packet it received. The
    /// client pings after a third of the timeout without traffic, so when the connection drops the
    /// server's timer has been running for up to a third of the timeout; when the connection goes
    /// silent instead, the C client notices only after two thirds of the timeout without a reply.
    /// Either way the server may expire the session a third of the timeout after `suspended`; the
    /// client presumes it a fifth of that window earlier, to leave room for timer and scheduling
    /// delays, so that a holder learns of its loss before anyone else can take over.
    public var presumedExpiryDelay: Duration {
        SessionStateMachine.presumedExpiryDelay(negotiatedTimeout)
    }

    public var description: String {
        "session 0x\(String(UInt64(bitPattern: sessionID), radix: 16)) (generation \(generation), timeout \(negotiatedTimeout))"
    }
}

/// The connection states a client goes through, as seen on ``ZooKeeperClient/sessionEvents``.
public enum SessionState: Sendable, Hashable, CustomStringConvertible {
    /// Connecting for the first time (or for a new session after expiry).
    case connecting
    /// Connected; the session is live.
    case connected(SessionInfo)
    /// The connection is lost; the session may still be alive on the server, and its watches and
    /// ephemeral nodes with it. Requests fail with `.connectionLoss` until it reconnects.
    case suspended(SessionInfo)
    /// Suspended long enough that the server may have expired the session
    /// (``SessionInfo/presumedExpiryDelay`` after ``suspended(_:)``: see
    /// <doc:SurvivingSessionExpiry>). Locks and leaders must treat their ephemeral nodes as gone.
    case presumedExpired(SessionInfo)
    /// The server reported the session expired; requests in flight on it failed with `.sessionExpired`.
    case expired(SessionInfo)
    /// A new session replaced an expired one (emitted before the matching ``connected(_:)``).
    /// Ephemeral nodes must be re-created and watches re-armed.
    case newSession(SessionInfo)
    /// Connected to a server that has lost quorum; only reads work.
    case readOnly(SessionInfo)
    /// The server rejected the credentials; the session cannot be used.
    case authFailed
    /// The client was closed.
    case closed

    public var description: String {
        switch self {
        case .connecting: return "connecting"
        case .connected(let info): return "connected(\(info))"
        case .suspended(let info): return "suspended(\(info))"
        case .presumedExpired(let info): return "presumedExpired(\(info))"
        case .expired(let info): return "expired(\(info))"
        case .newSession(let info): return "newSession(\(info))"
        case .readOnly(let info): return "readOnly(\(info))"
        case .authFailed: return "authFailed"
        case .closed: return "closed"
        }
    }

    /// Whether requests can currently reach a server.
    public var isConnected: Bool {
        switch self {
        case .connected, .readOnly, .newSession: return true
        default: return false
        }
    }

    /// The session the state is about, when there is one.
    public var session: SessionInfo? {
        switch self {
        case .connected(let info), .suspended(let info), .presumedExpired(let info), .expired(let info),
            .newSession(let info), .readOnly(let info):
            return info
        case .connecting, .authFailed, .closed:
            return nil
        }
    }

    /// Whether the state is final: nothing follows it.
    public var isTerminal: Bool {
        if case .closed = self { return true }
        return false
    }
}
