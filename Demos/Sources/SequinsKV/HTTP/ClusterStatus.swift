import Foundation

/// sequins' status document (`GET /`, `GET /<db>`, `GET /healthz`), with its JSON schema.
public struct ClusterStatus: Codable, Sendable, Hashable {
    public var dbs: [String: DatabaseStatus]
    public var shardID: String?

    enum CodingKeys: String, CodingKey {
        case dbs
        case shardID = "shard_id"
    }

    public struct DatabaseStatus: Codable, Sendable, Hashable {
        public var versions: [String: VersionStatus]
    }

    public struct VersionStatus: Codable, Sendable, Hashable {
        public var path: String
        public var numPartitions: Int
        public var targetReplication: Int
        public var replicationHistogram: [String: Int]
        public var averageReplication: Double
        public var missingPartitions: Int
        public var underreplicatedPartitions: Int
        public var overreplicatedPartitions: Int
        public var nodes: [String: NodeVersionStatus]

        enum CodingKeys: String, CodingKey {
            case path
            case numPartitions = "num_partitions"
            case targetReplication = "target_replication"
            case replicationHistogram = "replication_histogram"
            case averageReplication = "average_replication"
            case missingPartitions = "missing_partitions"
            case underreplicatedPartitions = "underreplicated_partitions"
            case overreplicatedPartitions = "overreplicated_partitions"
            case nodes
        }

        /// Recomputes the replication figures from the nodes: a node counts for its partitions
        /// while BUILDING, ACTIVE or REMOVING. Unlike sequins, partitions nobody holds count as missing.
        mutating func computeReplication() {
            var counts = Array(repeating: 0, count: numPartitions)
            for node in nodes.values where node.state != .error {
                for partition in node.partitions where partition >= 0 && partition < numPartitions { counts[partition] += 1 }
            }
            var histogram: [String: Int] = [:]
            for count in counts { histogram[String(count), default: 0] += 1 }
            replicationHistogram = numPartitions == 0 ? [:] : histogram
            averageReplication = numPartitions == 0 ? 0 : Double(counts.reduce(0, +)) / Double(numPartitions)
            missingPartitions = counts.filter { $0 == 0 }.count
            underreplicatedPartitions = counts.filter { $0 > 0 && $0 < targetReplication }.count
            overreplicatedPartitions = counts.filter { $0 > targetReplication }.count
        }
    }

    public struct NodeVersionStatus: Codable, Sendable, Hashable {
        public var name: String
        public var createdAt: String
        public var activeAt: String?
        public var current: Bool
        public var state: Version.State
        public var partitions: [Int]
        public var shardID: String?

        enum CodingKeys: String, CodingKey {
            case name
            case createdAt = "created_at"
            case activeAt = "active_at"
            case current, state, partitions
            case shardID = "shard_id"
        }
    }

    /// Adds another node's view (its own versions) to this one and recomputes the figures.
    mutating func merge(_ other: ClusterStatus) {
        for (databaseName, database) in other.dbs {
            for (versionName, version) in database.versions {
                if var existing = dbs[databaseName]?.versions[versionName] {
                    existing.nodes.merge(version.nodes) { mine, _ in mine }
                    existing.computeReplication()
                    dbs[databaseName, default: DatabaseStatus(versions: [:])].versions[versionName] = existing
                } else {
                    var added = version
                    added.computeReplication()
                    dbs[databaseName, default: DatabaseStatus(versions: [:])].versions[versionName] = added
                }
            }
        }
    }

    static let timestampFormat: Date.ISO8601FormatStyle = .iso8601
}
