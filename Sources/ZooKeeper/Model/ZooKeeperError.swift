import CZooKeeper

/// The one error type the ZooKeeper client throws.
///
/// Switch on ``code`` (stable across releases); ``path`` and ``rawCode`` say where and what the C
/// client reported, ``message`` explains it for a human.
///
/// How a request that got no answer fails says why, whatever code the C client reported
/// (``rawCode`` keeps that code):
/// - ``Code/connectionLoss``: the connection broke (or was being re-established, or the C client
///   dropped it after a reply it did not expect: ``rawCode`` -2, `ZRUNTIMEINCONSISTENCY`); the
///   session lives on, so the request may or may not have been applied and a retry on the same
///   session may succeed.
/// - ``Code/sessionExpired``: the session ended on the server (ephemeral nodes and watches are
///   gone). This includes everything the C client cut off with `ZCLOSING` while it tore the
///   expired handle down. The client opens a new session by itself (unless
///   ``ZooKeeperClient/Configuration/reconnectAfterExpiry`` is off): loops should wait for it and
///   carry on.
/// - ``Code/closed``: only ever because the user called ``ZooKeeperClient/close()`` (or the
///   client's `Service` ended). It is the one code that means "stop".
public struct ZooKeeperError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, switchable error code.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Value: String, Sendable, Hashable {
            case noNode, nodeExists, badVersion, notEmpty, noChildrenForEphemerals
            case connectionLoss, sessionExpired, operationTimeout, authFailed, noAuth
            case invalidACL, badArguments, closed, sessionMoved, notReadOnly, unimplemented
            case marshallingError, systemError, throttled, invalidPath, invalidConnectString
            case dataTooLarge, connectionTimeout, invalidState, unknown
            case reconfigDisabled, newConfigNoQuorum, reconfigInProgress, noWatcher
        }
        fileprivate let value: Value

        /// The node does not exist.
        public static let noNode = Code(value: .noNode)
        /// The node already exists.
        public static let nodeExists = Code(value: .nodeExists)
        /// The expected version did not match.
        public static let badVersion = Code(value: .badVersion)
        /// The node has children and cannot be deleted.
        public static let notEmpty = Code(value: .notEmpty)
        /// Ephemeral nodes cannot have children.
        public static let noChildrenForEphemerals = Code(value: .noChildrenForEphemerals)
        /// The connection was lost before the reply arrived; the operation may or may not have been applied.
        public static let connectionLoss = Code(value: .connectionLoss)
        /// The session expired; its ephemeral nodes and watches are gone. Requests and watches cut
        /// off by the expiry fail with this code whatever the C client reported (for example
        /// `ZCLOSING` while the expired handle is closed).
        public static let sessionExpired = Code(value: .sessionExpired)
        /// The server did not answer in time.
        public static let operationTimeout = Code(value: .operationTimeout)
        /// Authentication failed; the session cannot be used.
        public static let authFailed = Code(value: .authFailed)
        /// The session's identities are not allowed this operation by the node's ACL.
        public static let noAuth = Code(value: .noAuth)
        /// The ACL is invalid (for example empty, or an unknown scheme).
        public static let invalidACL = Code(value: .invalidACL)
        /// The server or the C client rejected the arguments.
        public static let badArguments = Code(value: .badArguments)
        /// The client was closed by ``ZooKeeperClient/close()`` (or its `Service` ended); nothing
        /// more can be done with it. Never the result of a session expiry.
        public static let closed = Code(value: .closed)
        /// The session moved to another server.
        public static let sessionMoved = Code(value: .sessionMoved)
        /// A write was sent to a read-only server.
        public static let notReadOnly = Code(value: .notReadOnly)
        /// The server does not implement the operation (for example TTL nodes without `zookeeper.extendedTypesEnabled`).
        public static let unimplemented = Code(value: .unimplemented)
        /// A request or reply could not be encoded or decoded.
        public static let marshallingError = Code(value: .marshallingError)
        /// A system error in the C client.
        public static let systemError = Code(value: .systemError)
        /// The server throttled the request without running it; retry later.
        public static let throttled = Code(value: .throttled)
        /// The path is not a valid ZooKeeper path (checked before anything is sent).
        public static let invalidPath = Code(value: .invalidPath)
        /// The connect string is malformed (checked before anything is sent).
        public static let invalidConnectString = Code(value: .invalidConnectString)
        /// The data is larger than the server accepts (checked before anything is sent).
        public static let dataTooLarge = Code(value: .dataTooLarge)
        /// No server could be reached within the connection timeout.
        public static let connectionTimeout = Code(value: .connectionTimeout)
        /// The handle is in a state that accepts no requests.
        public static let invalidState = Code(value: .invalidState)
        /// The ensemble does not allow dynamic reconfiguration (`reconfigEnabled=false`), or this
        /// client may not reconfigure it (only a super user may, unless the servers skip ACLs).
        public static let reconfigDisabled = Code(value: .reconfigDisabled)
        /// The new configuration's servers are not (yet) connected and in sync with the leader:
        /// start the joining servers first, then reconfigure again.
        public static let newConfigNoQuorum = Code(value: .newConfigNoQuorum)
        /// Another reconfiguration is in progress; retry once it is done.
        public static let reconfigInProgress = Code(value: .reconfigInProgress)
        /// There is no such watch to remove.
        public static let noWatcher = Code(value: .noWatcher)
        /// A C error code this library does not know.
        public static let unknown = Code(value: .unknown)

        public var description: String { value.rawValue }
    }

    /// The stable code to switch on.
    public var code: Code
    /// The path the operation was about, when there is one.
    public var path: String?
    /// The raw code of the C client (`ZOK`, `ZNONODE`, …), or `nil` when the error was raised by this library.
    public var rawCode: Int32?
    /// A human-readable explanation.
    public var message: String
    /// For a failed ``ZooKeeperClient/multi(_:)``: the index of the operation that failed.
    public var failedOperationIndex: Int?

    /// An error with `code`; the message defaults to the C client's text for `rawCode`, or the code.
    public init(_ code: Code, path: String? = nil, rawCode: Int32? = nil, message: String? = nil, failedOperationIndex: Int? = nil) {
        self.code = code
        self.path = path
        self.rawCode = rawCode
        self.message = message ?? ZooKeeperError.defaultMessage(code, rawCode: rawCode)
        self.failedOperationIndex = failedOperationIndex
    }

    public var description: String {
        var text = "ZooKeeperError.\(code)"
        if let path { text += " at \(path)" }
        if let failedOperationIndex { text += " (operation \(failedOperationIndex))" }
        text += ": \(message)"
        if let rawCode { text += " [C code \(rawCode)]" }
        return text
    }

    /// Whether retrying the same request on the same session may succeed: the connection broke
    /// (`.connectionLoss`), the server did not answer in time (`.operationTimeout`), or it
    /// throttled the request (`.throttled`).
    public var isRetryable: Bool {
        code == .connectionLoss || code == .operationTimeout || code == .throttled
    }

    /// Whether the client will be usable again by itself: the request failed because the
    /// connection or the session was lost (``isRetryable``, or `.sessionExpired`, after which the
    /// client opens a new session unless
    /// ``ZooKeeperClient/Configuration/reconnectAfterExpiry`` is off).
    ///
    /// This is the test a loop that must keep going (a watcher, a member that republishes
    /// itself) applies: wait until connected (``ZooKeeperClient/waitUntilConnected(timeout:)``),
    /// then start over from a fresh read, because after an expiry the session's ephemeral nodes
    /// and watches are gone. `.closed` is never transient.
    public var isTransient: Bool {
        isRetryable || code == .sessionExpired
    }

    private static func defaultMessage(_ code: Code, rawCode: Int32?) -> String {
        if let rawCode, let text = zerror(rawCode) {
            return String(cString: text)
        }
        return "\(code)"
    }

    static func closed(path: String? = nil) -> ZooKeeperError {
        ZooKeeperError(.closed, path: path, message: "the client is closed")
    }

    /// Maps a C return code to an error (never called with `ZOK`).
    init(rawCode: Int32, path: String?) {
        let code: Code
        switch rawCode {
        case ZNONODE.rawValue: code = .noNode
        case ZNODEEXISTS.rawValue: code = .nodeExists
        case ZBADVERSION.rawValue: code = .badVersion
        case ZNOTEMPTY.rawValue: code = .notEmpty
        case ZNOCHILDRENFOREPHEMERALS.rawValue: code = .noChildrenForEphemerals
        case ZCONNECTIONLOSS.rawValue: code = .connectionLoss
        case ZSESSIONEXPIRED.rawValue: code = .sessionExpired
        case ZOPERATIONTIMEOUT.rawValue: code = .operationTimeout
        case ZAUTHFAILED.rawValue: code = .authFailed
        case ZNOAUTH.rawValue: code = .noAuth
        case ZINVALIDACL.rawValue: code = .invalidACL
        case ZBADARGUMENTS.rawValue: code = .badArguments
        case ZCLOSING.rawValue: code = .closed
        case ZSESSIONMOVED.rawValue: code = .sessionMoved
        case ZNOTREADONLY.rawValue: code = .notReadOnly
        case ZUNIMPLEMENTED.rawValue: code = .unimplemented
        case ZMARSHALLINGERROR.rawValue: code = .marshallingError
        case ZSYSTEMERROR.rawValue: code = .systemError
        case ZTHROTTLEDOP.rawValue: code = .throttled
        case ZINVALIDSTATE.rawValue: code = .invalidState
        case ZRECONFIGDISABLED.rawValue: code = .reconfigDisabled
        case ZNEWCONFIGNOQUORUM.rawValue: code = .newConfigNoQuorum
        case ZRECONFIGINPROGRESS.rawValue: code = .reconfigInProgress
        case ZNOWATCHER.rawValue: code = .noWatcher
        case ZRUNTIMEINCONSISTENCY.rawValue:
            // A whole request fails with this only when the C client read a reply it did not
            // expect (a server leaving the ensemble can send one): it drops the connection and
            // fails every request in flight with this code, then reconnects on the same session.
            // (In a multi's results it marks the operations after the failing one; those are not
            // mapped here.)
            self.init(
                .connectionLoss, path: path, rawCode: rawCode,
                message: "the C client dropped the connection after an unexpected reply; the request may or may not have been applied")
            return
        case -125:
            // QUOTAEXCEEDED of 3.7+ servers that enforce quotas (the 3.8 C client has no name for it).
            self.init(.unknown, path: path, rawCode: rawCode, message: "a quota on the path's subtree is exceeded (server code -125)")
            return
        default: code = .unknown
        }
        self.init(code, path: path, rawCode: rawCode)
    }
}
