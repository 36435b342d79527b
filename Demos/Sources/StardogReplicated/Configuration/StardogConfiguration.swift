import DemoSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A cluster node's `stardog.properties`: Stardog's `pack.*` keys and a few of this project's.
///
/// Stardog's own keys: `pack.enabled`, `pack.zookeeper.address`, `pack.node.address`,
/// `pack.zookeeper.auth`, `pack.node.join.retry.count`, `pack.node.join.retry.delay`,
/// `pack.session.timeout`, `pack.connection.timeout`. This project's (Stardog does not document
/// theirs): `pack.cluster.name`, `pack.node.join.unlocked.attempts`, `pack.node.join.lock.never`,
/// `pack.node.commit.timeout`, `stardog.home`, `stardog.http.port`, and the fault injection points
/// of the tests (``FaultInjection``, `stardog.test.*`). Any other `pack.*` key is an
/// error naming it; keys outside `pack.*` and `stardog.*` belong to the rest of Stardog and are
/// reported in ``ignoredKeys``.
public struct StardogConfiguration: Sendable, Hashable {
    /// `pack.enabled`: must be `true` (this demo runs only as a cluster member).
    public var enabled = false
    /// `pack.zookeeper.address` (required): the ZooKeeper connect string.
    public var zookeeperAddress = ""
    /// `pack.node.address`: the host (or `host:port`) peers and clients use for this node.
    /// Default `127.0.0.1` with ``httpPort``.
    public var nodeHost = "127.0.0.1"
    /// `pack.zookeeper.auth` (default `admin:admin`): the ZooKeeper digest credentials that
    /// protect the cluster's znodes.
    public var zookeeperUser = "admin"
    public var zookeeperPassword = "admin"
    /// `pack.node.join.retry.count` (default 20): join attempts before the node gives up and stops.
    public var joinRetryCount = 20
    /// `pack.node.join.retry.delay` (default 3s): the pause between join attempts.
    public var joinRetryDelay: Duration = .seconds(3)
    /// `pack.node.join.unlocked.attempts` (default 3): attempts that sync without holding the
    /// cluster lock; later attempts sync under it (blocking writes while they catch up).
    public var joinUnlockedAttempts = 3
    /// `pack.node.join.lock.never` (default false): never sync while holding the lock (the
    /// lock is still taken briefly to check and register).
    public var joinNeverLocks = false
    /// `pack.session.timeout` (default 10s): the ZooKeeper session timeout.
    public var sessionTimeout: Duration = .seconds(10)
    /// `pack.connection.timeout` (default 15s): how long to wait for ZooKeeper at start.
    public var connectionTimeout: Duration = .seconds(15)
    /// `pack.node.commit.timeout` (default 5s): how long the coordinator waits for a member's
    /// vote or acknowledgement before expelling it.
    public var commitTimeout: Duration = .seconds(5)
    /// `pack.cluster.name` (default `cluster`): the cluster's znodes live under `/stardog/<name>`.
    public var clusterName = "cluster"
    /// `stardog.home` (default: the properties file's directory): databases and logs.
    public var home = "."
    /// `stardog.http.port` (default 5820): the HTTP port (Stardog's server port).
    public var httpPort = 5820
    /// Keys outside `pack.*`/`stardog.*` that the node does not use.
    public var ignoredKeys: [String] = []
    /// Pauses that tests put in a node's path to open a window for a fault (none by default).
    public var faultInjection = FaultInjection()

    /// Test-only pauses, from `stardog.test.*` keys (documented in RunningAReplicatedCluster.md).
    public struct FaultInjection: Sendable, Hashable {
        /// `stardog.test.pause.before.record`: for a round of transactions, the coordinator waits
        /// this long after every member voted yes, before recording the decision (a window to
        /// kill it in).
        public var pauseBeforeRecord: Duration?
        /// `stardog.test.sync.delay`: a joining node waits this long per database it copies.
        public var syncDelay: Duration?

        public init(pauseBeforeRecord: Duration? = nil, syncDelay: Duration? = nil) {
            self.pauseBeforeRecord = pauseBeforeRecord
            self.syncDelay = syncDelay
        }
    }

    public init() {}

    /// The address peers use: `host:port`.
    public var nodeAddress: String { nodeHost.contains(":") ? nodeHost : "\(nodeHost):\(httpPort)" }

    public static let knownKeys: Set<String> = [
        "pack.enabled", "pack.zookeeper.address", "pack.node.address", "pack.zookeeper.auth", "pack.node.join.retry.count",
        "pack.node.join.retry.delay", "pack.node.join.unlocked.attempts", "pack.node.join.lock.never", "pack.session.timeout",
        "pack.connection.timeout", "pack.node.commit.timeout", "pack.cluster.name", "stardog.home", "stardog.http.port",
        "stardog.test.pause.before.record", "stardog.test.sync.delay",
    ]

    /// Reads `stardog.properties` text; relative `stardog.home` is resolved against `directory`.
    /// - Throws: ``ConfigurationError`` naming the key and the problem.
    public init(properties text: String, directory: String = ".") throws {
        let values: [String: String]
        do { values = try JavaProperties.parse(text) } catch { throw ConfigurationError("stardog.properties: \(error)") }
        self.init()
        home = directory
        for key in values.keys.sorted() where !Self.knownKeys.contains(key) {
            if key.hasPrefix("pack.") || key.hasPrefix("stardog.") { throw ConfigurationError("unknown configuration key \(key)") }
            ignoredKeys.append(key)
        }
        func value(_ key: String) -> String? { values[key].map { $0.trimmingCharacters(in: .whitespaces) } }
        func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
            guard let text = value(key) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError("\(key): '\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        func duration(_ key: String) throws -> Duration? {
            guard let text = value(key) else { return nil }
            guard let parsed = Self.parseDuration(text) else {
                throw ConfigurationError("\(key): '\(text)' is not a duration (a number with ms, s, m or h, like 3s)")
            }
            return parsed
        }
        if let text = value("pack.enabled") {
            guard let flag = Bool(text.lowercased()) else { throw ConfigurationError("pack.enabled: '\(text)' is not true or false") }
            enabled = flag
        }
        if let text = value("pack.node.join.lock.never") {
            guard let flag = Bool(text.lowercased()) else { throw ConfigurationError("pack.node.join.lock.never: '\(text)' is not true or false") }
            joinNeverLocks = flag
        }
        zookeeperAddress = value("pack.zookeeper.address") ?? ""
        if let host = value("pack.node.address"), !host.isEmpty { nodeHost = host }
        if let auth = value("pack.zookeeper.auth") {
            guard let colon = auth.firstIndex(of: ":"), colon != auth.startIndex, auth.index(after: colon) != auth.endIndex else {
                throw ConfigurationError("pack.zookeeper.auth: expected user:password")
            }
            zookeeperUser = String(auth[..<colon])
            zookeeperPassword = String(auth[auth.index(after: colon)...])
        }
        joinRetryCount = try integer("pack.node.join.retry.count", in: 1...1_000_000) ?? joinRetryCount
        joinRetryDelay = try duration("pack.node.join.retry.delay") ?? joinRetryDelay
        joinUnlockedAttempts = try integer("pack.node.join.unlocked.attempts", in: 0...1_000_000) ?? joinUnlockedAttempts
        sessionTimeout = try duration("pack.session.timeout") ?? sessionTimeout
        connectionTimeout = try duration("pack.connection.timeout") ?? connectionTimeout
        commitTimeout = try duration("pack.node.commit.timeout") ?? commitTimeout
        httpPort = try integer("stardog.http.port", in: 1...65535) ?? httpPort
        faultInjection.pauseBeforeRecord = try duration("stardog.test.pause.before.record")
        faultInjection.syncDelay = try duration("stardog.test.sync.delay")
        if let name = value("pack.cluster.name") {
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }), name != ".", name != ".." else {
                throw ConfigurationError("pack.cluster.name: '\(name)' must be letters, digits, '-', '_' or '.'")
            }
            clusterName = name
        }
        if let path = value("stardog.home"), !path.isEmpty {
            home = path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).path
        }
        try validate()
    }

    /// Checks what every node needs.
    public func validate() throws {
        guard enabled else {
            throw ConfigurationError("pack.enabled must be true: replicated runs only as a member of a cluster")
        }
        guard !zookeeperAddress.isEmpty else { throw ConfigurationError("pack.zookeeper.address is required (the ZooKeeper servers, host:port,...)") }
        if nodeHost.contains(":") {
            guard let port = nodeHost.split(separator: ":").last.flatMap({ Int($0) }), (1...65535).contains(port) else {
                throw ConfigurationError("pack.node.address: '\(nodeHost)' is not host or host:port")
            }
        }
        // A loopback address is this node's id for its peers: with ZooKeeper on other machines,
        // the nodes are on other machines too, and every one of them would be "127.0.0.1". (A
        // ZooKeeper named by this machine's own address or name is not another machine.)
        let zooKeeperHosts = zookeeperAddress.split(separator: "/").first.map { $0.split(separator: ",").map { String($0.split(separator: ":").first ?? "") } } ?? []
        if Self.isLoopback(nodeHost), let remote = zooKeeperHosts.first(where: { !Self.isLoopback($0) && !Self.isThisMachine($0) }) {
            throw ConfigurationError(
                "pack.node.address is \(nodeHost) (loopback) while ZooKeeper is at \(remote): set pack.node.address to the address peers reach this node at")
        }
    }

    /// Whether `host` (or `host:port`) names this machine only.
    static func isLoopback(_ host: String) -> Bool {
        let name = host.hasPrefix("[") ? String(host.dropFirst().prefix { $0 != "]" }) : String(host.split(separator: ":").first ?? "")
        return name == "localhost" || name.hasPrefix("127.") || name == "::1" || name.isEmpty
    }

    /// Whether `host` resolves to an address of one of this machine's interfaces (not when it
    /// does not resolve: nothing shows it is this machine).
    static func isThisMachine(_ host: String) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var resolved: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &resolved) == 0, let first = resolved else { return false }
        defer { freeaddrinfo(first) }
        var interfaces: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&interfaces) == 0, let firstInterface = interfaces else { return true }
        defer { freeifaddrs(firstInterface) }
        func numeric(_ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> String? {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            guard getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        var local = Set<String>()
        for interface in sequence(first: firstInterface, next: { $0.pointee.ifa_next }) {
            guard let address = interface.pointee.ifa_addr else { continue }
            switch Int32(address.pointee.sa_family) {
            case AF_INET: numeric(address, socklen_t(MemoryLayout<sockaddr_in>.size)).map { _ = local.insert($0) }
            case AF_INET6: numeric(address, socklen_t(MemoryLayout<sockaddr_in6>.size)).map { _ = local.insert($0) }
            default: continue
            }
        }
        return sequence(first: first, next: { $0.pointee.ai_next }).contains { entry in
            entry.pointee.ai_addr.flatMap { numeric($0, entry.pointee.ai_addrlen) }.map(local.contains) ?? false
        }
    }

    /// `3s`, `500ms`, `1m`, `2h` (also `1.5s`).
    public static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (unit, seconds) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count).trimmingCharacters(in: .whitespaces)
            guard let value = Double(number), value >= 0, value.isFinite else { return nil }
            return .milliseconds(Int64((value * seconds * 1000).rounded()))
        }
        return nil
    }
}
