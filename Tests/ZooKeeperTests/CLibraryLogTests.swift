import Logging
import Synchronization
import Testing
import ZooKeeperTesting
@testable import ZooKeeper

@Suite struct CLibraryLogTests {
    @Test(arguments: [
        // A server's connection coming and going: the client says it once, from its session states.
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_ERROR@handle_socket_error_msg@2040: Socket [127.0.0.1:2181] zk retcode=-4, errno=112(Host is down): failed while receiving a server response", Logger.Level.debug),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_ERROR@handle_socket_error_msg@2040: Socket [127.0.0.1:2181] zk retcode=-4, errno=111(Connection refused): server refused to accept the client", .debug),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_WARN@zookeeper_interest@2532: Exceeded deadline by 13ms", .debug),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_WARN@zookeeper_interest@2561: Delaying connection after exhaustively trying all servers [127.0.0.1:2181]", .debug),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_ERROR@getaddrs@947: getaddrinfo: Name or service not known", .debug),
        ("2026-12-07 16:45:42,126:12646(0x7fd1):ZOO_ERROR@auth_completion_func@2071: Authentication scheme no-such-scheme failed. Connection closed.", .debug),
        // Everything else keeps the C library's level.
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_ERROR@zoo_set_servers@1482: New server list cannot be empty", .error),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_WARN@zookeeper_set_sock_nodelay@2458: Unable to set TCP_NODELAY, latency may be effected", .warning),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_INFO@check_events@2507: initiated connection", .info),
        ("2026-11-21 07:23:05,216:20324(0x7f41):ZOO_DEBUG@zookeeper_process@3260: Got ping response", .debug),
    ])
    func levelsAreReadFromTheCLine(_ line: String, _ level: Logger.Level) {
        #expect(CLibraryLog.level(of: line) == level)
    }

    /// A client whose every line, and the C library's from `info` up, lands in `records`; its
    /// session timeout (10 s) is long enough that a brief disconnect never reaches presumedExpired.
    private func recordingClient(_ connectString: String, label: String, _ records: LogRecords) throws -> ZooKeeperClient {
        var configuration = configuration(sessionTimeout: .seconds(10))
        configuration.logger = Logger(label: label) { _ in RecordingLogHandler(records) }
        configuration.logger.logLevel = .trace
        configuration.cLibraryLogLevel = .info
        return try ZooKeeperClient(connectString: connectString, configuration: configuration)
    }

    /// Each server of an ensemble stopped and started in turn under a connected client: the
    /// client recovers every time, and nothing is logged at warning or above, only one `info`
    /// line per lost connection and one per reconnection.
    @Test(.timeLimit(.minutes(3))) func oneServerStoppingIsNotAnError() async throws {
        let ensemble = try await ZooKeeperEnsemble.start(size: 3)
        defer { ensemble.destroy() }
        let records = LogRecords()
        let client = try recordingClient(ensemble.connectString, label: "stopping-servers", records)
        try await client.connect()
        for server in ensemble.servers {
            await server.stop()
            try await ensemble.waitForQuorum()
            _ = try await client.withRetry(.untilSessionLost) { try await client.exists("/") }  // through whichever server it is on now
            try await server.start()
            try await ensemble.waitForQuorum()
        }
        _ = try await client.withRetry(.untilSessionLost) { try await client.exists("/") }
        await client.close()
        let loud = records.all.filter { $0.level >= .warning }
        #expect(loud.isEmpty, "\(loud)")
        let lost = records.all.filter { $0.message.hasPrefix("lost the connection to ZooKeeper") }.count
        let back = records.all.filter { $0.message.hasPrefix("reconnected to ZooKeeper") }.count
        #expect(lost >= 1, "the client's server was stopped at least once")
        #expect(back == lost)
        #expect(records.all.filter { $0.level == .info && $0.metadata["zk.source"] == nil }.count == lost + back)
    }

    /// A session the server expires under a connected client is one `warning` from the client
    /// and no `error`: the C library's own line about it ("sessionId=… has expired") is `debug`,
    /// and the new session that follows is `info`.
    @Test(.timeLimit(.minutes(2))) func anExpiredSessionIsOneWarningAndNoError() async throws {
        let server = try await ZooKeeperServer.start()  // its own port, to tell its lines from other tests'
        defer { server.destroy() }
        let records = LogRecords()
        let client = try recordingClient(server.connectString, label: "expiring-session", records)
        try await client.connect()
        let recorder = StateRecorder(client)
        let expired = try #require(client.state.session?.sessionID)
        try await client.expireSessionForTesting()
        try await recorder.wait(for: .newSession)
        try await client.waitUntilConnected()
        _ = try await client.exists("/")
        await client.close()

        // The C library's log goes to the client opened last, in this whole process: lines that
        // name another server are another test's.
        let ours = records.all.filter { record in
            record.metadata["zk.source"] == nil || !record.message.contains("127.0.0.1:") || record.message.contains("127.0.0.1:\(server.port)")
        }
        let loud = ours.filter { $0.level >= .error }
        #expect(loud.isEmpty, "\(loud)")
        let warnings = ours.filter { $0.level == .warning }
        #expect(warnings.map(\.message) == ["the ZooKeeper session expired; its ephemeral nodes and watches are gone"])
        #expect(warnings.first?.metadata["zk.session"] == "0x\(String(UInt64(bitPattern: expired), radix: 16))")
        #expect(ours.filter { $0.message == "opened a new ZooKeeper session" }.count == 1)
        // Another test's client opened later takes the C library's log away; when it does not,
        // the C library's line about the expiry is here, at debug.
        let cExpiry = ours.filter { $0.metadata["zk.source"] != nil && $0.message.contains("has expired") }
        #expect(cExpiry.allSatisfy { $0.level == .debug }, "\(cExpiry)")
    }
}

/// Log records kept by a test.
final class LogRecords: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }
    private let records = Mutex<[Record]>([])
    func append(_ record: Record) { records.withLock { $0.append(record) } }
    var all: [Record] { records.withLock { $0 } }
}

/// A swift-log handler that keeps what it is given.
struct RecordingLogHandler: LogHandler {
    let records: LogRecords
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    init(_ records: LogRecords) { self.records = records }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        records.append(.init(level: event.level, message: "\(event.message)", metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}

