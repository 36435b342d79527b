import CZooKeeper
import Logging
import Synchronization

/// Forwards the C library's log lines to swift-log.
///
/// The C log callback takes no context, and the C log level is process-wide, so there is one
/// forwarding target per process: the logger of the most recently opened client that asked for it.
enum CLibraryLog {
    private static let target = Mutex<Logger?>(nil)

    static func install(logger: Logger, level: Logger.Level?) {
        // A client that does not want the C library's messages leaves the current target alone.
        guard let level else { return }
        target.withLock { $0 = logger }
        let cLevel: ZooLogLevel
        switch level {
        case .critical, .error: cLevel = ZOO_LOG_LEVEL_ERROR
        case .warning: cLevel = ZOO_LOG_LEVEL_WARN
        case .notice, .info: cLevel = ZOO_LOG_LEVEL_INFO
        case .debug, .trace: cLevel = ZOO_LOG_LEVEL_DEBUG
        }
        zoo_set_debug_level(cLevel)
    }

    static let callback: log_callback_fn = { message in
        guard let message, let logger = target.withLock({ $0 }) else { return }
        let text = String(cString: message)
        logger.log(level: level(of: text), "\(text)", metadata: ["zk.source": "libzookeeper"])
    }

    /// The C library's messages about one server's connection: a refused or broken connection,
    /// a timed-out read, an expired session, a deadline missed, a server list exhausted, a name
    /// not resolved. The C library logs them at error or warning whenever they happen (a stopped
    /// server of an ensemble makes a dozen), although the client recovers by itself; the client
    /// reports the episode once, from its session states (see ``ZooKeeperClient/sessionEvents``),
    /// so these are kept for `debug`. So is the C library's line about a refused credential: the
    /// client reports it as its `authFailed` state, and the caller gets the error.
    static let connectionMessages = [
        "zk retcode=", "Exceeded deadline by", "Delaying connection after exhaustively trying", "failed to send PING",
        "getaddrinfo:", "could not resolve", "Authentication scheme ",
    ]

    /// The level of a C log line, which reads `…:ZOO_ERROR@function@line: text`: the C level,
    /// except for ``connectionMessages``, which are `debug`.
    static func level(of line: String) -> Logger.Level {
        if connectionMessages.contains(where: { line.contains($0) }) { return .debug }
        if line.contains("ZOO_ERROR@") { return .error }
        if line.contains("ZOO_WARN@") { return .warning }
        if line.contains("ZOO_INFO@") { return .info }
        return .debug
    }
}
