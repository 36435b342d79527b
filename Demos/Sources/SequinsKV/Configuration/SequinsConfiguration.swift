import DemoSupport
import Foundation
import TOMLKit

/// A `kv` node's configuration: sequins' `sequins.conf` (TOML), with sequins' keys and defaults.
///
/// Unknown keys are an error naming the key, as in sequins. Durations are Go duration strings
/// (`"10s"`, `"100ms"`, `"1m30s"`). Keys that only make sense for sequins' S3/HDFS backends,
/// Datadog and the debug server are accepted and validated so an existing file still loads;
/// the ones this demo does not act on are listed in ``ignoredKeys``.
public struct SequinsConfiguration: Sendable, Hashable {
    public var source: String = ""
    public var bind: String = "0.0.0.0:9599"
    public var localStore: String = "/var/sequins/"
    public var maxParallelLoads: Int = 0
    public var throttleLoads: Duration = .zero
    public var writeBufferSize: Int = 32768
    public var refreshPeriod: Duration = .zero
    public var requireSuccessFile: Bool = false
    public var contentType: String = ""
    public var maxDownloadBandwidthMBPerSecond: Int = 0
    public var goforitFlagJSONPath: String = ""

    public var storage = Storage()
    public var s3 = S3()
    public var sharding = Sharding()
    public var zk = ZK()
    public var datadog = Datadog()
    public var debug = Debug()
    public var test = Test()

    public struct Storage: Sendable, Hashable {
        public var compression: String = "snappy"
        public var blockSize: Int = 4096
    }

    public struct S3: Sendable, Hashable {
        public var region: String = ""
        public var accessKeyID: String = ""
        public var secretAccessKey: String = ""
        public var maxRetries: Int = 3
    }

    public struct Sharding: Sendable, Hashable {
        public var enabled: Bool = false
        public var replication: Int = 2
        public var minReplication: Int = 1
        public var maxReplication: Int = 0
        public var timeToConverge: Duration = .seconds(10)
        public var proxyTimeout: Duration = .milliseconds(100)
        /// Zero means `proxy_timeout / replication`.
        public var proxyStageTimeout: Duration = .zero
        public var clusterName: String = "sequins"
        /// Empty means the host name.
        public var advertisedHostname: String = ""
        /// Empty means self-assigned (the smallest free integer, kept in the local store).
        public var shardID: String = ""

        /// The stage timeout in effect.
        public var effectiveProxyStageTimeout: Duration {
            proxyStageTimeout > .zero ? proxyStageTimeout : proxyTimeout / replication
        }
    }

    public struct ZK: Sendable, Hashable {
        public var servers: [String] = ["localhost:2181"]
        public var connectTimeout: Duration = .seconds(1)
        public var sessionTimeout: Duration = .seconds(10)

        /// The servers as a ZooKeeper connect string (`:2181` added where no port is given).
        public var connectString: String {
            servers.map { $0.contains(":") ? $0 : $0 + ":2181" }.joined(separator: ",")
        }
    }

    public struct Datadog: Sendable, Hashable {
        public var url: String = "localhost:8200"
    }

    public struct Debug: Sendable, Hashable {
        public var bind: String = ""
        public var expvars: Bool = true
        public var pprof: Bool = false
        public var requestLogEnable: Bool = false
        public var requestLogFile: String = "stdout"
    }

    /// sequins' hidden test knobs, used by its cluster tests (and ours).
    public struct Test: Sendable, Hashable {
        public var upgradeDelay: Duration = .zero
        public var allowLocalCluster: Bool = false
        /// Zero means sequins' 10 minutes.
        public var versionRemoveTimeout: Duration = .zero
        /// Makes a load hang forever after reading this file of this version (`"<version>/<file>"`).
        public var hang: Hang = Hang()
        /// `flap_threshold` (kv only; sequins hard-codes 5): more than this many lost ZooKeeper
        /// connections within 20 minutes stop the node. Zero never stops it (for tests that stop and resume a
        /// node many times).
        public var flapThreshold: Int = 5

        public var effectiveVersionRemoveTimeout: Duration {
            versionRemoveTimeout > .zero ? versionRemoveTimeout : .seconds(600)
        }
    }

    public struct Hang: Sendable, Hashable {
        public var version: String = ""
        public var file: String = ""
    }

    public init() {}

    /// Keys that are read and checked but have no effect in this demo (S3, Datadog, the debug
    /// server, sequins' block format, bandwidth limits, and `content_type`, which sequins' code
    /// never reads: its answers carry the type Go sniffs from the value, as kv's do).
    public static let ignoredKeys: Set<String> = [
        "write_buffer_size", "max_download_bandwidth_mb_per_second", "content_type",
        "storage.compression", "storage.block_size", "s3.region", "s3.access_key_id", "s3.secret_access_key",
        "s3.max_retries", "datadog.url", "debug.bind", "debug.expvars", "debug.pprof", "debug.request_log_enable",
        "debug.request_log_file", "test.s3",
    ]

    /// Parses a `sequins.conf`.
    /// - Throws: ``ConfigurationError`` naming the key (or the TOML syntax error).
    public init(toml text: String) throws(ConfigurationError) {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw ConfigurationError("invalid TOML: \(error.debugDescription)")
        } catch {
            throw ConfigurationError("invalid TOML: \(error)")
        }
        var reader = TableReader(table: table, prefix: "")
        source = try reader.string("source", default: source)
        bind = try reader.string("bind", default: bind)
        localStore = try reader.string("local_store", default: localStore)
        maxParallelLoads = try reader.int("max_parallel_loads", default: maxParallelLoads)
        throttleLoads = try reader.duration("throttle_loads", default: throttleLoads)
        writeBufferSize = try reader.int("write_buffer_size", default: writeBufferSize)
        refreshPeriod = try reader.duration("refresh_period", default: refreshPeriod)
        requireSuccessFile = try reader.bool("require_success_file", default: requireSuccessFile)
        contentType = try reader.string("content_type", default: contentType)
        maxDownloadBandwidthMBPerSecond = try reader.int("max_download_bandwidth_mb_per_second", default: maxDownloadBandwidthMBPerSecond)
        goforitFlagJSONPath = try reader.string("goforit_flag_json_path", default: goforitFlagJSONPath)

        if var section = try reader.section("storage") {
            storage.compression = try section.string("compression", default: storage.compression)
            storage.blockSize = try section.int("block_size", default: storage.blockSize)
            try section.finish()
        }
        if var section = try reader.section("s3") {
            s3.region = try section.string("region", default: s3.region)
            s3.accessKeyID = try section.string("access_key_id", default: s3.accessKeyID)
            s3.secretAccessKey = try section.string("secret_access_key", default: s3.secretAccessKey)
            s3.maxRetries = try section.int("max_retries", default: s3.maxRetries)
            try section.finish()
        }
        if var section = try reader.section("sharding") {
            sharding.enabled = try section.bool("enabled", default: sharding.enabled)
            sharding.replication = try section.int("replication", default: sharding.replication)
            sharding.minReplication = try section.int("min_replication", default: sharding.minReplication)
            sharding.maxReplication = try section.int("max_replication", default: sharding.maxReplication)
            sharding.timeToConverge = try section.duration("time_to_converge", default: sharding.timeToConverge)
            sharding.proxyTimeout = try section.duration("proxy_timeout", default: sharding.proxyTimeout)
            sharding.proxyStageTimeout = try section.duration("proxy_stage_timeout", default: sharding.proxyStageTimeout)
            sharding.clusterName = try section.string("cluster_name", default: sharding.clusterName)
            sharding.advertisedHostname = try section.string("advertised_hostname", default: sharding.advertisedHostname)
            sharding.shardID = try section.string("shard_id", default: sharding.shardID)
            try section.finish()
        }
        if var section = try reader.section("zk") {
            zk.servers = try section.stringArray("servers", default: zk.servers)
            zk.connectTimeout = try section.duration("connect_timeout", default: zk.connectTimeout)
            zk.sessionTimeout = try section.duration("session_timeout", default: zk.sessionTimeout)
            try section.finish()
        }
        if var section = try reader.section("datadog") {
            datadog.url = try section.string("url", default: datadog.url)
            try section.finish()
        }
        if var section = try reader.section("debug") {
            debug.bind = try section.string("bind", default: debug.bind)
            debug.expvars = try section.bool("expvars", default: debug.expvars)
            debug.pprof = try section.bool("pprof", default: debug.pprof)
            debug.requestLogEnable = try section.bool("request_log_enable", default: debug.requestLogEnable)
            debug.requestLogFile = try section.string("request_log_file", default: debug.requestLogFile)
            try section.finish()
        }
        if var section = try reader.section("test") {
            test.upgradeDelay = try section.duration("upgrade_delay", default: test.upgradeDelay)
            test.allowLocalCluster = try section.bool("allow_local_cluster", default: test.allowLocalCluster)
            test.versionRemoveTimeout = try section.duration("version_remove_timeout", default: test.versionRemoveTimeout)
            test.flapThreshold = try section.int("flap_threshold", default: test.flapThreshold)
            guard test.flapThreshold >= 0 else {
                throw ConfigurationError("test.flap_threshold must be 0 (never stop) or more, not \(test.flapThreshold)")
            }
            _ = try section.string("s3", default: "")
            if var hang = try section.section("hang") {
                test.hang.version = try hang.string("version", default: "")
                test.hang.file = try hang.string("file", default: "")
                try hang.finish()
            }
            try section.finish()
        }
        try reader.finish()
    }

    /// Checks the values that must hold together (sequins' `validateConfig`).
    /// - Throws: ``ConfigurationError`` naming the key.
    public func validate() throws(ConfigurationError) {
        if source.isEmpty { throw ConfigurationError("source is required (set it in the file or pass --source)") }
        if !localStore.hasPrefix("/") { throw ConfigurationError("local_store must be an absolute path, got \(localStore)") }
        if let root = try? SourceRoot(source), (localStore.hasSuffix("/") ? localStore : localStore + "/").hasPrefix(root.directory + "/") {
            throw ConfigurationError("local_store \(localStore) must not be inside the source \(source)")
        }
        guard Self.splitHostPort(bind) != nil else { throw ConfigurationError("bind must be host:port, got \(bind)") }
        if maxParallelLoads < 0 { throw ConfigurationError("max_parallel_loads must not be negative") }
        if sharding.replication < 1 { throw ConfigurationError("sharding.replication must be at least 1, got \(sharding.replication)") }
        if sharding.minReplication < 1 || sharding.minReplication > sharding.replication {
            throw ConfigurationError(
                "sharding.min_replication must be between 1 and sharding.replication (\(sharding.replication)), got \(sharding.minReplication)")
        }
        if sharding.maxReplication < 0 { throw ConfigurationError("sharding.max_replication must not be negative") }
        if sharding.enabled && zk.servers.isEmpty { throw ConfigurationError("zk.servers must list at least one server when sharding is enabled") }
        if sharding.proxyTimeout <= .zero { throw ConfigurationError("sharding.proxy_timeout must be positive") }
        if sharding.enabled {
            for character in sharding.clusterName where character == "/" {
                throw ConfigurationError("sharding.cluster_name must not contain '/', got \(sharding.clusterName)")
            }
        }
    }

    /// `host:port` → (host, port).
    public static func splitHostPort(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}


/// Reads typed keys from a TOML table and remembers which were read, so unknown keys can be named.
struct TableReader {
    let table: TOMLTable
    let prefix: String
    var seen: Set<String> = []

    init(table: TOMLTable, prefix: String) {
        self.table = table
        self.prefix = prefix
    }

    private mutating func value(_ key: String) -> TOMLValueConvertible? {
        seen.insert(key)
        return table[key]
    }

    private func name(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

    mutating func string(_ key: String, default fallback: String) throws(ConfigurationError) -> String {
        guard let value = value(key) else { return fallback }
        guard let string = value.string else { throw ConfigurationError("\(name(key)) must be a string") }
        return string
    }

    mutating func int(_ key: String, default fallback: Int) throws(ConfigurationError) -> Int {
        guard let value = value(key) else { return fallback }
        guard let int = value.int else { throw ConfigurationError("\(name(key)) must be an integer") }
        return int
    }

    mutating func bool(_ key: String, default fallback: Bool) throws(ConfigurationError) -> Bool {
        guard let value = value(key) else { return fallback }
        guard let bool = value.bool else { throw ConfigurationError("\(name(key)) must be true or false") }
        return bool
    }

    mutating func duration(_ key: String, default fallback: Duration) throws(ConfigurationError) -> Duration {
        guard let value = value(key) else { return fallback }
        guard let string = value.string else { throw ConfigurationError("\(name(key)) must be a duration string such as \"10s\"") }
        guard let duration = GoDuration.parse(string) else {
            throw ConfigurationError("\(name(key)): \"\(string)\" is not a duration (use e.g. \"100ms\", \"10s\", \"1m30s\")")
        }
        return duration
    }

    mutating func stringArray(_ key: String, default fallback: [String]) throws(ConfigurationError) -> [String] {
        guard let value = value(key) else { return fallback }
        guard let array = value.array else { throw ConfigurationError("\(name(key)) must be an array of strings") }
        var result: [String] = []
        for element in array {
            guard let string = element.string else { throw ConfigurationError("\(name(key)) must be an array of strings") }
            result.append(string)
        }
        return result
    }

    mutating func section(_ key: String) throws(ConfigurationError) -> TableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else { throw ConfigurationError("\(name(key)) must be a table ([\(name(key))])") }
        return TableReader(table: table, prefix: name(key))
    }

    /// - Throws: naming the first key that was never read.
    func finish() throws(ConfigurationError) {
        for key in table.keys.sorted() where !seen.contains(key) {
            throw ConfigurationError("unknown configuration key \(name(key))")
        }
    }
}

/// Go's `time.ParseDuration` for the units a configuration uses.
public enum GoDuration {
    public static func parse(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        var rest = Substring(text)
        var negative = false
        if rest.hasPrefix("-") || rest.hasPrefix("+") {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !($0.isNumber || $0 == ".") }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs", "μs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            total += value * scale
        }
        let nanoseconds = Int64((total * 1e9).rounded())
        return .nanoseconds(negative ? -nanoseconds : nanoseconds)
    }
}
