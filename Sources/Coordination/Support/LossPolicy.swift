import ZooKeeper

/// When a holder (of a lock, a lease, leadership) must stop assuming it still holds.
public enum LossPolicy: Sendable, Hashable {
    /// As soon as the connection is lost (``SessionState/suspended(_:)``). Safe, but a short network
    /// blip costs the lock or leadership.
    case onSuspended
    /// When the session is presumed expired (suspended for a whole negotiated timeout), or really
    /// expires, whichever comes first. Two holders can overlap for at most the time between the
    /// server expiring the session and this client presuming it, which the presumed-expiry timer
    /// keeps below zero (``SessionInfo/presumedExpiryDelay`` ends before the server's timer can).
    case onPresumedExpired

    /// Whether `state` means something held on session `generation` is lost. Pure.
    public func isLoss(_ state: SessionState, heldOn generation: Int) -> Bool {
        switch state {
        case .suspended: return self == .onSuspended
        case .presumedExpired, .expired, .authFailed, .closed: return true
        case .connected(let info), .newSession(let info), .readOnly(let info): return info.generation != generation
        case .connecting: return false
        }
    }
}

/// Errors of the coordination recipes.
public struct CoordinationError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        /// The wait ran past its deadline; nothing is held and no node is left behind.
        public static let timedOut = Code(name: "timedOut")
        /// What was held is no longer safe to assume (session lost, node deleted).
        public static let lost = Code(name: "lost")
        /// The operation needs something held, and it is not.
        public static let notHeld = Code(name: "notHeld")
        /// Another live session already uses this member id.
        public static let duplicateMember = Code(name: "duplicateMember")
        /// The recipe was used after it was closed or left.
        public static let closed = Code(name: "closed")
        public var description: String { name }
    }

    public var code: Code
    public var path: String
    public var message: String

    public init(_ code: Code, path: String, message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { "CoordinationError.\(code) at \(path): \(message)" }
}
