import ZooKeeper

/// When a holder (of a lock, a lease, leadership) must stop assuming it still holds.
public enum LossPolicy: Sendable, Hashable {
    /// As soon as the connection is lost (`SessionState/suspended(_:)`). Safe, but a short network
    /// blip costs the lock or leadership.
    case onSuspended
    /// When the session is presumed expired (4/15 of the negotiated timeout after it was
    /// suspended), or really expires, whichever comes first. Two holders can overlap for at most the time between the
    /// server expiring the session and this client presuming it, which the presumed-expiry timer
    /// keeps below zero (`SessionInfo/presumedExpiryDelay` ends before the server's timer can).
    case onPresumedExpired

    /// Whether `state` means something held on session `generation` is lost. Pure.
    ///
    /// A connection to a read-only server (a client with `allowReadOnly`, cut off from the quorum)
    /// is a loss under either policy: that server cannot keep the session alive on the quorum's
    /// side, which expires it while the client sees no suspension to time, and nothing held can
    /// be written from there anyway.
    public func isLoss(_ state: SessionState, heldOn generation: Int) -> Bool {
        switch state {
        case .suspended: return self == .onSuspended
        case .presumedExpired, .expired, .authFailed, .closed, .readOnly: return true
        case .connected(let info), .newSession(let info): return info.generation != generation
        case .connecting: return false
        }
    }
}
