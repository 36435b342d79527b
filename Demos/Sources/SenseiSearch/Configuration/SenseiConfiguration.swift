import DemoSupport
import Foundation

/// A search node's `sensei.properties`, with Sensei's keys and defaults (§2.7 of the reference).
///
/// Keys Sensei knows but this node does not use (thread pools, Zoie and Bobo plugins, other
/// gateways' settings) are accepted and reported in ``ignoredKeys``; any other `sensei.*` key is an
/// error naming it, so a typo never passes silently. Keys outside `sensei.*` are left alone.
public struct SenseiConfiguration: Sendable, Hashable {
    /// `sensei.node.id` (required).
    public var nodeID: Int = 0
    /// `sensei.node.partitions` (required): `0,1`, `1,4-7,10`.
    public var partitions: [Int] = []
    /// `sensei.server.port`: the node's search port (its address in ZooKeeper).
    public var serverPort: Int = 1234
    /// `sensei.broker.port`: the broker's HTTP port (`/sensei`).
    public var brokerPort: Int = 8080
    /// `sensei.cluster.name`: the ZooKeeper group `/<name>`.
    public var clusterName: String = "sensei"
    /// `sensei.cluster.url`: ZooKeeper servers, `host:port[,host:port]`.
    public var clusterURL: String = "localhost:2181"
    /// `sensei.cluster.timeout`, milliseconds as Sensei's documentation says (default 300000); used
    /// as the ZooKeeper session timeout (the server clamps it to its own bounds).
    public var clusterTimeout: Duration = .milliseconds(300_000)
    /// `sensei.index.directory`: one subdirectory per partition.
    public var indexDirectory: String = "index"
    /// `sensei.index.manager.default.maxpartition.id`: the highest partition id (total − 1).
    public var maxPartitionID: Int = 0
    /// `sensei.sharding.strategy` (or Sensei's `sensei.sharding.strategy.class`).
    public var shardingStrategy: ShardingStrategy = .uidModulo
    /// `sensei.gateway.file.path`: the JSON-lines stream every node reads.
    public var gatewayFilePath: String?
    /// `sensei.broker.timeout`: how long the broker waits for the nodes (8000 ms).
    public var brokerTimeout: Duration = .milliseconds(8000)
    /// `sensei.node.partition.timeout`: how long a node waits for one partition (8000 ms).
    public var partitionTimeout: Duration = .milliseconds(8000)
    /// `sensei.server.host` (this project's key): the address the node binds and advertises in
    /// ZooKeeper (Sensei took the host's address). Default 127.0.0.1.
    public var serverHost: String = "127.0.0.1"
    /// `sensei.schema.file` (this project's key): the schema JSON; relative paths are resolved
    /// against the properties file's directory. Default `schema.json` there, where Sensei looks.
    public var schemaFile: String = "schema.json"
    /// Sensei keys present in the file that this node accepts but does not use.
    public var ignoredKeys: [String] = []

    public init() {}

    /// The total number of partitions (`maxpartition.id + 1`).
    public var partitionCount: Int { maxPartitionID + 1 }

    public static let knownKeys: Set<String> = [
        "sensei.node.id", "sensei.node.partitions", "sensei.server.port", "sensei.broker.port", "sensei.cluster.name",
        "sensei.cluster.url", "sensei.cluster.timeout", "sensei.index.directory", "sensei.index.manager.default.maxpartition.id",
        "sensei.sharding.strategy", "sensei.sharding.strategy.class", "sensei.gateway.file.path", "sensei.gateway.class",
        "sensei.broker.timeout", "sensei.node.partition.timeout", "sensei.schema.file", "sensei.server.host",
    ]

    /// Sensei's other keys (and key prefixes), accepted and ignored.
    static let ignoredKeyPrefixes: [String] = [
        "sensei.server.requestThread", "sensei.index.batchSize", "sensei.index.batchDelay", "sensei.index.maxBatchSize",
        "sensei.index.realtime", "sensei.index.freshness", "sensei.indexer.", "sensei.index.manager.default.eventsPerMin",
        "sensei.index.manager.default.batchSize", "sensei.gateway.", "sensei.index.analyzer.", "sensei.index.similarity.",
        "sensei.index.interpreter.", "sensei.index.custom.", "sensei.index.pruner.", "sensei.indexing.retention.",
        "sensei.broker.webapp.path", "sensei.broker.minThread", "sensei.broker.maxThread", "sensei.broker.maxWaittime",
        "sensei.broker.finagle.", "sensei.plugin.", "sensei.custom.", "sensei.search.", "sensei.mapreduce.",
        "sensei.broker.allowPartialMerge", "sensei.broker.pollInterval", "sensei.cluster.client-name", "sensei.version.comparator",
        "sensei.query.builder.factory", "sensei.mx4j.",
    ]

    /// Reads `sensei.properties` text.
    /// - Throws: ``ConfigurationError`` naming the key and the problem.
    public init(properties text: String) throws {
        let values: [String: String]
        do { values = try JavaProperties.parse(text) } catch { throw ConfigurationError("sensei.properties: \(error)") }
        self.init()
        for key in values.keys.sorted() where key.hasPrefix("sensei.") && !Self.knownKeys.contains(key) {
            guard Self.ignoredKeyPrefixes.contains(where: { key.hasPrefix($0) }) else {
                throw ConfigurationError("unknown configuration key \(key)")
            }
            ignoredKeys.append(key)
        }
        func integer(_ key: String) throws -> Int? {
            guard let raw = values[key] else { return nil }
            guard let value = Int(raw.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError("\(key) must be an integer, got \"\(raw)\"")
            }
            return value
        }
        func milliseconds(_ key: String) throws -> Duration? {
            guard let value = try integer(key) else { return nil }
            guard value > 0 else { throw ConfigurationError("\(key) must be a positive number of milliseconds, got \(value)") }
            return .milliseconds(value)
        }
        guard let nodeID = try integer("sensei.node.id") else { throw ConfigurationError("sensei.node.id is required") }
        self.nodeID = nodeID
        guard let partitions = values["sensei.node.partitions"] else { throw ConfigurationError("sensei.node.partitions is required") }
        self.partitions = try Self.parsePartitions(partitions)
        if let port = try integer("sensei.server.port") { serverPort = port }
        if let port = try integer("sensei.broker.port") { brokerPort = port }
        if let name = values["sensei.cluster.name"] { clusterName = name }
        if let url = values["sensei.cluster.url"] { clusterURL = url }
        if let timeout = try milliseconds("sensei.cluster.timeout") { clusterTimeout = timeout }
        if let directory = values["sensei.index.directory"] { indexDirectory = directory }
        if let maxID = try integer("sensei.index.manager.default.maxpartition.id") { maxPartitionID = maxID }
        if let strategy = values["sensei.sharding.strategy"] ?? values["sensei.sharding.strategy.class"] {
            guard let parsed = ShardingStrategy(configurationValue: strategy) else {
                throw ConfigurationError("sensei.sharding.strategy must be mod (uid % partitions) or hash, got \"\(strategy)\"")
            }
            shardingStrategy = parsed
        }
        if let gatewayClass = values["sensei.gateway.class"], !gatewayClass.hasSuffix("LinedFileDataProviderBuilder"), gatewayClass != "file" {
            throw ConfigurationError("sensei.gateway.class \(gatewayClass) is not supported: only the file gateway (LinedFileDataProviderBuilder)")
        }
        gatewayFilePath = values["sensei.gateway.file.path"]
        if let timeout = try milliseconds("sensei.broker.timeout") { brokerTimeout = timeout }
        if let timeout = try milliseconds("sensei.node.partition.timeout") { partitionTimeout = timeout }
        if let schema = values["sensei.schema.file"] { schemaFile = schema }
        if let host = values["sensei.server.host"], !host.isEmpty { serverHost = host }
        try validate()
    }

    public func validate() throws {
        guard maxPartitionID >= 0 else {
            throw ConfigurationError("sensei.index.manager.default.maxpartition.id must be at least 0, got \(maxPartitionID)")
        }
        if let outside = partitions.first(where: { $0 > maxPartitionID }) {
            throw ConfigurationError(
                "sensei.node.partitions lists partition \(outside), above sensei.index.manager.default.maxpartition.id (\(maxPartitionID))")
        }
        for (key, port) in [("sensei.server.port", serverPort), ("sensei.broker.port", brokerPort)] where !(0...65535).contains(port) {
            throw ConfigurationError("\(key) must be a port (0-65535), got \(port)")
        }
        if clusterName.isEmpty || clusterName.contains("/") {
            throw ConfigurationError("sensei.cluster.name must be a non-empty name without /, got \"\(clusterName)\"")
        }
    }

    /// Sensei's partition list: ids and inclusive ranges separated by commas or spaces, as
    /// Sensei splits it (`[,\s]+`): `0,1`, `1,4-7,10`, `0 1`.
    public static func parsePartitions(_ text: String) throws -> [Int] {
        var result = Set<Int>()
        let parts = text.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        guard !parts.isEmpty else { throw ConfigurationError("sensei.node.partitions: no partition in \"\(text)\"") }
        for part in parts {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            if bounds.count == 1, let id = Int(bounds[0]), id >= 0 {
                result.insert(id)
            } else if bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low >= 0, low <= high {
                result.formUnion(low...high)
            } else {
                throw ConfigurationError("sensei.node.partitions: \"\(part)\" is not a partition id or a range like 4-7 (in \"\(text)\")")
            }
        }
        return result.sorted()
    }
}
