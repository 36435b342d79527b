import Foundation
import Synchronization
import ZooKeeper

#if canImport(Glibc)
import Glibc
#endif

/// A real ZooKeeper server (the Debian `zookeeper` package's jars, run with
/// `java … QuorumPeerMain zoo.cfg`) on a free loopback port with its own temporary directory.
///
/// ```swift
/// let server = try await ZooKeeperServer.start()
/// defer { server.destroy() }
/// let client = try ZooKeeperClient(connectString: server.connectString)
/// ```
///
/// For outage tests: ``stop()``, ``kill()`` (SIGKILL), ``pause()`` (SIGSTOP) and ``resume()``,
/// ``restart()`` (same port, same data). ``destroy()`` kills the process and deletes the directory;
/// it also runs when the object is released.
public final class ZooKeeperServer: @unchecked Sendable {
    /// How the test server is set up.
    public struct Configuration: Sendable {
        /// The server's tick; session timeouts are clamped to [2, 20] ticks. Default: 500 ms.
        public var tickTime: Duration = .milliseconds(500)
        /// Allow TTL nodes (`zookeeper.extendedTypesEnabled`). Default: `true`.
        public var extendedTypesEnabled: Bool = true
        /// How often the server removes empty container nodes. Default: 1 second (the server's own default is 60).
        public var containerCheckInterval: Duration = .seconds(1)
        /// Maximum Java heap in MiB. Default: 256.
        public var heapMegabytes: Int = 256
        /// Extra `zoo.cfg` lines (`key=value`).
        public var extraSettings: [String: String] = [:]
        /// Extra JVM system properties (`-Dkey=value`), for example `readonlymode.enabled`.
        public var systemProperties: [String: String] = [:]
        /// The defaults, as documented on each field.
        public init() {}
    }

    /// The server's place in an ensemble.
    struct QuorumMember {
        var id: Int
        /// Every member the server knows at start, by id.
        var servers: [Int: (peerPort: Int, electionPort: Int, clientPort: Int)]
        /// Whether the ensemble is configured dynamically (`reconfigEnabled`, a dynamic
        /// configuration file with client addresses), so that servers can be added and removed.
        var dynamic: Bool
    }

    /// What the server was started with.
    public let configuration: Configuration
    /// The client port on 127.0.0.1.
    public let port: Int
    /// The server's directory (config, data, log).
    public let directory: URL
    let quorum: QuorumMember?
    private let child: ChildProcess

    /// The server's id in its ensemble (`nil` for a standalone server).
    public var serverID: Int? { quorum?.id }

    /// The server as an ensemble's configuration lists it (`nil` for a standalone server): what a
    /// reconfiguration adds when the server joins.
    public var ensembleMember: EnsembleConfiguration.Server? {
        guard let quorum, let own = quorum.servers[quorum.id] else { return nil }
        return EnsembleConfiguration.Server(
            id: quorum.id, host: "127.0.0.1", quorumPort: own.peerPort, electionPort: own.electionPort, role: .participant,
            clientAddress: .init(host: "127.0.0.1", port: own.clientPort))
    }

    /// `127.0.0.1:<port>`.
    public var connectString: String { "127.0.0.1:\(port)" }

    /// Starts a standalone server and waits until it accepts sessions.
    /// - Throws: ``ZooKeeperTestingError`` when java or the jars are missing, or the server does not start.
    public static func start(configuration: Configuration = Configuration()) async throws -> ZooKeeperServer {
        let server = try ZooKeeperServer(configuration: configuration, port: try freeLoopbackPort(), quorum: nil)
        try await server.start()
        return server
    }

    init(configuration: Configuration, port: Int, quorum: QuorumMember?) throws {
        try Self.checkInstallation()
        self.configuration = configuration
        self.port = port
        self.quorum = quorum
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zk-test-\(UUID().uuidString.prefix(8))-\(port)")
        child = ChildProcess(logPath: directory.appendingPathComponent("server.log").path)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("data"), withIntermediateDirectories: true)
        try writeConfiguration()
    }

    deinit {
        destroy()
    }

    // MARK: - Process control

    /// Starts the server process (again, after ``stop()`` or ``kill()``) and waits until it serves.
    public func start() async throws {
        try launch()
        try await waitUntilServing()
    }

    /// Launches the process without waiting (an ensemble member cannot serve before a quorum exists).
    func launch() throws {
        var arguments = [
            "-Xms64m", "-Xmx\(configuration.heapMegabytes)m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Xshare:auto", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dzookeeper.admin.enableServer=false",
            "-Dznode.container.checkIntervalMs=\(configuration.containerCheckInterval.milliseconds)",
        ]
        if configuration.extendedTypesEnabled { arguments.append("-Dzookeeper.extendedTypesEnabled=true") }
        // Reconfiguration is for super users only; test ensembles let any client reconfigure.
        if quorum?.dynamic == true { arguments.append("-Dzookeeper.skipACL=yes") }
        for (key, value) in configuration.systemProperties.sorted(by: { $0.key < $1.key }) {
            arguments.append("-D\(key)=\(value)")
        }
        arguments += ["-cp", Self.classPath, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                      directory.appendingPathComponent("zoo.cfg").path]
        try child.start(executable: Self.javaPath!, arguments: arguments)
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to exit. Sessions stay in its data.
    public func stop() async {
        await child.stop()
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    public func kill() async {
        await child.kill9()
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    public func pause() {
        child.pause()
    }

    /// Resumes a paused server (SIGCONT).
    public func resume() {
        child.resume()
    }

    /// Stops (SIGTERM) and starts the server on the same port with the same data.
    public func restart() async throws {
        await stop()
        try await start()
    }

    /// Kills the process and deletes the directory. Safe to call more than once.
    public func destroy() {
        child.killAndWait()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Whether the server process is running.
    public var isRunning: Bool { child.isRunning }

    // MARK: - Four-letter words

    /// Sends a four-letter command (`ruok`, `srvr`, `mntr`, `cons`, …) and returns the answer.
    public func fourLetterWord(_ command: String) async throws -> String {
        try await Self.fourLetterWord(command, port: port)
    }

    /// The server's `Mode:` (`standalone`, `leader`, `follower`), or `nil` if it is not serving.
    public func mode() async -> String? {
        guard let answer = try? await fourLetterWord("srvr") else { return nil }
        for line in answer.split(separator: "\n") where line.hasPrefix("Mode: ") {
            return String(line.dropFirst(6))
        }
        return nil
    }

    /// Waits until the server reports a `Mode:` line, i.e. accepts sessions.
    public func waitUntilServing(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isRunning {
                throw ZooKeeperTestingError("the ZooKeeper server exited during start-up; its log:\n\(logTail())")
            }
            if await mode() != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ZooKeeperTestingError("the ZooKeeper server on port \(port) did not serve within \(timeout); its log:\n\(logTail())")
    }

    /// The last lines of the server's log.
    public func logTail(lines: Int = 30) -> String {
        child.log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    // MARK: - Set-up

    private func writeConfiguration() throws {
        var settings = [
            "tickTime=\(configuration.tickTime.milliseconds)",
            "dataDir=\(directory.appendingPathComponent("data").path)",
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "4lw.commands.whitelist=*",
            "preAllocSize=4096",
            "snapCount=100000",
        ]
        if let quorum, quorum.dynamic {
            // The membership (with client addresses) lives in a dynamic file the servers rewrite
            // on every reconfiguration.
            settings += ["initLimit=5", "syncLimit=2", "reconfigEnabled=true", "standaloneEnabled=false"]
            let dynamicFile = directory.appendingPathComponent("zoo.cfg.dynamic")
            settings.append("dynamicConfigFile=\(dynamicFile.path)")
            let members = quorum.servers.sorted { $0.key < $1.key }.map { id, server in
                "server.\(id)=127.0.0.1:\(server.peerPort):\(server.electionPort):participant;127.0.0.1:\(server.clientPort)"
            }
            try (members.joined(separator: "\n") + "\n").write(to: dynamicFile, atomically: true, encoding: .utf8)
            try "\(quorum.id)\n".write(to: directory.appendingPathComponent("data/myid"), atomically: true, encoding: .utf8)
        } else {
            settings += ["clientPort=\(port)", "clientPortAddress=127.0.0.1"]
            if let quorum {
                settings += ["initLimit=5", "syncLimit=2"]
                for (id, server) in quorum.servers.sorted(by: { $0.key < $1.key }) {
                    settings.append("server.\(id)=127.0.0.1:\(server.peerPort):\(server.electionPort)")
                }
                try "\(quorum.id)\n".write(to: directory.appendingPathComponent("data/myid"), atomically: true, encoding: .utf8)
            }
        }
        for (key, value) in configuration.extraSettings.sorted(by: { $0.key < $1.key }) {
            settings.append("\(key)=\(value)")
        }
        try (settings.joined(separator: "\n") + "\n").write(
            to: directory.appendingPathComponent("zoo.cfg"), atomically: true, encoding: .utf8)
    }

    static let jarDirectory = "/usr/share/java"
    static let requiredJars = ["zookeeper", "zookeeper-jute", "slf4j-api"]
    static let optionalJars = [
        "slf4j-simple", "netty-handler", "netty-transport", "netty-common", "netty-buffer", "netty-resolver",
        "netty-codec", "netty-transport-native-epoll", "netty-transport-native-unix-common", "metrics-core",
        "snappy-java", "commons-cli", "commons-io",
    ]

    static var classPath: String {
        (requiredJars + optionalJars)
            .map { "\(jarDirectory)/\($0).jar" }
            .filter { FileManager.default.fileExists(atPath: $0) }
            .joined(separator: ":")
    }

    static let javaPath: String? = {
        if let home = ProcessInfo.processInfo.environment["JAVA_HOME"],
            FileManager.default.isExecutableFile(atPath: home + "/bin/java")
        {
            return home + "/bin/java"
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/java"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    /// Throws, saying what to install, when java or the server jars are missing.
    public static func checkInstallation() throws {
        guard javaPath != nil else {
            throw ZooKeeperTestingError(
                "java was not found on PATH or in JAVA_HOME: install a Java runtime (apt-get install -y default-jre-headless)")
        }
        for jar in requiredJars where !FileManager.default.fileExists(atPath: "\(jarDirectory)/\(jar).jar") {
            throw ZooKeeperTestingError(
                "\(jarDirectory)/\(jar).jar is missing: install the ZooKeeper server (apt-get install -y zookeeper)")
        }
    }

    static func fourLetterWord(_ command: String, port: Int) async throws -> String {
        try await Task.detached { try LoopbackSocket.exchange(port: port, send: command, timeout: .seconds(2)) }.value
    }
}

/// A problem of the test support itself (what to install, a server that does not start).
public struct ZooKeeperTestingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// An error that says `description`.
    public init(_ description: String) { self.description = description }
}

/// A free TCP port on 127.0.0.1 (bound, read and released), never one this process was given
/// before.
///
/// The port is free when it is read, not reserved: whoever asked must bind it soon. Between the
/// release and that bind the kernel could hand the same port to the next caller (tests start
/// servers in parallel, and a Java server takes a second or so to bind), so ports already given
/// out are skipped. To connect where nothing listens, hold a ``RefusingLoopbackPort`` instead.
public func freeLoopbackPort() throws -> Int {
    // Ports given out before stay bound while the kernel is asked again.
    var skipped: [RefusingLoopbackPort] = []
    defer { withExtendedLifetime(skipped) {} }
    for _ in 0..<64 {
        let bound = try RefusingLoopbackPort()
        if givenLoopbackPorts.withLock({ $0.insert(bound.port).inserted }) { return bound.port }  // released on return
        skipped.append(bound)
    }
    throw ZooKeeperTestingError("no loopback port that was not given out before, after 64 tries")
}

/// Every port ``freeLoopbackPort()`` returned in this process.
private let givenLoopbackPorts = Mutex<Set<Int>>([])

/// Blocking loopback socket exchange for four-letter words (short, with timeouts).
enum LoopbackSocket {
    static func exchange(port: Int, send text: String, timeout: Duration) throws -> String {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ZooKeeperTestingError("socket() failed") }
        defer { close(descriptor) }
        var time = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ZooKeeperTestingError("nothing listens on 127.0.0.1:\(port)") }
        _ = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[0..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}

extension ZooKeeperServer {
    private static let sharedServer = Task { try await ZooKeeperServer.start() }

    /// One standalone server for the whole test process, started on first use, for tests that do
    /// not stop, pause or restart it (give each test its own path, see ``uniqueTestPath(_:)``).
    public static func shared() async throws -> ZooKeeperServer {
        try await sharedServer.value
    }
}

/// A client connected to `connectString` with settings that suit tests: a short session timeout
/// (so that expiry tests are quick) and a generous connection timeout (so that a loaded machine
/// does not fail a connect).
public func connectedTestClient(_ connectString: String, sessionTimeout: Duration = .seconds(4)) async throws -> ZooKeeperClient {
    var configuration = ZooKeeperClient.Configuration()
    configuration.sessionTimeout = sessionTimeout
    configuration.connectionTimeout = .seconds(20)
    let client = try ZooKeeperClient(connectString: connectString, configuration: configuration)
    try await client.connect()
    return client
}

/// A fresh node path no other test uses: `/test-<name>-<random>`.
public func uniqueTestPath(_ name: String = #function) -> String {
    let clean = name.filter { $0.isLetter || $0.isNumber }
    return "/test-\(clean.prefix(40))-\(UInt64.random(in: 0...UInt64.max))"
}

/// Polls `condition` every 50 ms until it holds; throws ``ZooKeeperTestingError`` naming `what`
/// after `timeout`. For effects that show up asynchronously (another session's view, a server's
/// clean-up), never for timing assertions.
public func eventually(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw ZooKeeperTestingError("timed out waiting until \(what)")
}
