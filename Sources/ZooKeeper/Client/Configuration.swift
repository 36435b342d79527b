import Logging

extension ZooKeeperClient {
    /// Everything that shapes a client's session. Every field has a default; `Configuration()` is a
    /// reasonable start for a local server.
    public struct Configuration: Sendable {
        /// The session timeout asked of the server. The server clamps it to
        /// [2, 20] × its `tickTime` unless configured otherwise; the granted value is in
        /// ``SessionInfo/negotiatedTimeout``. Default: 10 seconds.
        public var sessionTimeout: Duration = .seconds(10)
        /// How long ``ZooKeeperClient/connect()`` waits for the first session before it throws
        /// `.connectionTimeout`. Default: 15 seconds.
        public var connectionTimeout: Duration = .seconds(15)
        /// Whether the client may connect to a server that has lost quorum and serves reads only.
        /// Default: `false`.
        public var allowReadOnly: Bool = false
        /// Credentials applied with `addAuth("digest", "user:password")` on every new session, before
        /// its connection is reported (so the first request carries them).
        public var digestCredentials: [DigestCredential] = []
        /// Whether the client opens a new session by itself after the server expired the old one.
        /// Default: `true`. When `false`, the client ends in ``SessionState/expired(_:)`` and every request
        /// fails with `.sessionExpired` until it is closed.
        public var reconnectAfterExpiry: Bool = true
        /// The largest node data the client sends. The server's `jute.maxbuffer` defaults to
        /// 1 MiB − 1 byte for a whole request; data near that size makes the server drop the
        /// connection, so the client refuses it up front with `.dataTooLarge`.
        /// Default: 1 MiB − 1 KiB.
        public var maxDataSize: Int = 1_048_576 - 1024
        /// The logger for the client and, at ``cLibraryLogLevel``, the C library's messages.
        public var logger: Logger = Logger(label: "zookeeper", factory: { _ in SwiftLogNoOpLogHandler() })
        /// The lowest severity of the C library's own messages forwarded to ``logger``
        /// (the C library knows error, warning, info and debug). Default: `.warning`.
        ///
        /// The C library has one log level and one log callback per process, so the client opened
        /// last with a non-`nil` value decides for all; `nil` leaves them as they are (and never
        /// lets the C library write to stderr). Avoid `.debug` in production: the 3.8 C client has a
        /// use-after-free at its debug level (ZOOKEEPER-4809).
        public var cLibraryLogLevel: Logger.Level? = .warning
        /// How often, at most, the C client resolves the server host names again during normal
        /// operation (it always does after a connection loss). The C client's own default resolves
        /// them before every poll of its socket, which costs a netlink round trip per request;
        /// `nil` resolves them only after a connection loss. Default: 30 seconds.
        public var hostResolutionInterval: Duration? = .seconds(30)
        /// Whether the client follows the ensemble's configuration (`/zookeeper/config`): when
        /// servers are added to or removed from the ensemble by a reconfiguration, the client's
        /// server list becomes the new configuration's client addresses, so that it survives the
        /// replacement of every server it started with (Curator's `EnsembleTracker`). Needs
        /// ZooKeeper 3.5+ servers whose configuration gives client addresses
        /// (`server.N=host:port:port;clientPort`); otherwise the list stays as it is.
        /// Default: `true`.
        public var followsEnsembleChanges: Bool = true
        /// A session to resume instead of creating a new one (the id and password of another
        /// handle's session). The test kit uses it to expire a session on demand.
        package var resumeSession: SessionCredentials?

        /// The defaults, as documented on each field.
        public init() {}
    }

    /// A `digest` scheme identity: `user:password`.
    public struct DigestCredential: Sendable, Hashable {
        /// The user name.
        public var user: String
        /// The password (sent to the server, which stores only its digest).
        public var password: String
        /// The identity `user:password`.
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
        var authString: String { "\(user):\(password)" }
    }
}

/// The id and password that identify a session to the server.
public struct SessionCredentials: Sendable, Hashable {
    /// The session's id, as the server assigned it.
    public var sessionID: Int64
    /// The session's password (16 bytes), which lets a handle resume the session.
    public var password: [UInt8]
    /// Credentials of the session `sessionID`.
    public init(sessionID: Int64, password: [UInt8]) {
        self.sessionID = sessionID
        self.password = password
    }
}
