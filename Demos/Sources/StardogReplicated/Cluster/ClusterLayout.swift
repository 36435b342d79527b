import Foundation
import ZooKeeper

/// Where the cluster lives in ZooKeeper (our design: Stardog does not document its znodes) and
/// how it is protected.
///
/// ```
/// /stardog/<cluster>/members/<host:port>  EPHEMERAL   (no data: the name is the address)
/// /stardog/<cluster>/election/…           EPHEMERAL_SEQUENTIAL  lowest = coordinator
/// /stardog/<cluster>/lock/…               EPHEMERAL_SEQUENTIAL  the cluster lock (commits, admin, joins)
/// /stardog/<cluster>/dbs                  PERSISTENT  exists ⇒ the cluster has state
/// /stardog/<cluster>/dbs/<db>             PERSISTENT  {"seq","txId"}: the last committed transaction
/// /stardog/<cluster>/readonly             PERSISTENT  exists ⇒ writes are rejected
/// ```
///
/// Every znode carries the digest ACL of `pack.zookeeper.auth` (all permissions) and lets anyone
/// read, so `zk info` works without credentials and nothing can be changed without them.
public struct ClusterLayout: Sendable, Hashable {
    public let root: String
    public let acl: [ACL]

    public init(clusterName: String, user: String, password: String) {
        root = "/stardog/\(clusterName)"
        acl = [ACL.digest(user: user, password: password, permissions: .all), ACL(permissions: .read, scheme: "world", id: "anyone")]
    }

    public var members: String { root + "/members" }
    public var election: String { root + "/election" }
    public var lock: String { root + "/lock" }
    public var databases: String { root + "/dbs" }
    public var readOnly: String { root + "/readonly" }
    public func member(_ id: String) -> String { members + "/" + id }
    public func database(_ name: String) -> String { databases + "/" + name }

    /// The live members' addresses (a member znode is named after its node's address).
    public func readMembers(_ client: ZooKeeperClient) async throws -> Set<String> {
        Set(try await client.childrenIfExists(members))
    }

    /// The recorded catalog with each entry's znode version, or `nil` when the cluster has no state.
    public func readCatalog(_ client: ZooKeeperClient) async throws -> RecordedCatalog? {
        let names: [String]
        do { names = try await client.getChildren(databases).names } catch let error as ZooKeeperError where error.code == .noNode { return nil }
        let replies = names.map { ($0, client.submitGetData(database($0))) }
        var recorded = RecordedCatalog()
        for (name, reply) in replies {
            let data: NodeData
            do { data = try await reply.value() } catch let error as ZooKeeperError where error.code == .noNode { continue }
            let entry = try decode(data, of: name)
            recorded.catalog[name] = entry.version
            recorded.znodeVersions[name] = entry.znodeVersion
        }
        return recorded
    }

    /// One database's recorded version and znode version, `nil` when it is not recorded.
    public func readDatabase(_ client: ZooKeeperClient, _ name: String) async throws -> RecordedDatabase? {
        let data: NodeData
        do { data = try await client.getData(database(name)) } catch let error as ZooKeeperError where error.code == .noNode { return nil }
        return try decode(data, of: name)
    }

    private func decode(_ data: NodeData, of name: String) throws -> RecordedDatabase {
        guard let version = try? JSONDecoder().decode(DatabaseVersion.self, from: Data(data.bytes)) else {
            throw ReplicatedError(.storage, "\(database(name)) does not hold a database version")
        }
        return RecordedDatabase(version: version, znodeVersion: data.stat.version)
    }
}

/// What ZooKeeper records for one database: its version, and the version of its znode (what a
/// conditional update of the record names).
public struct RecordedDatabase: Sendable, Hashable {
    public var version: DatabaseVersion
    public var znodeVersion: Int32
}

/// What ZooKeeper records for every database.
public struct RecordedCatalog: Sendable, Hashable {
    public var catalog: Catalog = [:]
    public var znodeVersions: [String: Int32] = [:]
}
