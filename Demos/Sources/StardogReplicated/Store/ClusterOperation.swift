import Foundation

/// A database's position in its history: how many transactions it has committed (`seq`) and the
/// UUID of the last one (`txId`) — what ZooKeeper records for each database, and what a member
/// must show to stay in the cluster.
public struct DatabaseVersion: Codable, Sendable, Hashable, CustomStringConvertible {
    public var seq: Int
    public var txId: String
    public init(seq: Int, txId: String) {
        self.seq = seq
        self.txId = txId
    }
    public var description: String { "\(seq)/\(txId)" }
}

/// Every database and its version, on a node or in ZooKeeper.
public typealias Catalog = [String: DatabaseVersion]

/// One change the coordinator commits on every member: a transaction's net effect, or the
/// creation or removal of a database.
public struct ClusterOperation: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable { case transaction, createDatabase, dropDatabase }
    public var kind: Kind
    public var database: String
    /// N-Triples to add and to remove (transactions only); the two sets do not overlap.
    public var add: String
    public var remove: String

    public init(kind: Kind, database: String, add: String = "", remove: String = "") {
        self.kind = kind
        self.database = database
        self.add = add
        self.remove = remove
    }
}

/// An operation a member has voted yes to (durably), waiting for the coordinator's decision.
/// `next` is the version the database has once it is committed (`nil`: the database is dropped).
/// `round` names this attempt (commit and abort refer to it); `fencingToken` is the coordinator's
/// cluster-lock token, which grows with every holder, so a member can tell a later coordinator's
/// prepare from a late one of an earlier coordinator.
public struct PreparedOperation: Codable, Sendable, Hashable {
    public var operation: ClusterOperation
    public var previous: DatabaseVersion?
    public var next: DatabaseVersion?
    public var round: String
    public var fencingToken: Int64

    public init(operation: ClusterOperation, previous: DatabaseVersion?, next: DatabaseVersion?, round: String = UUID().uuidString, fencingToken: Int64 = 0) {
        self.operation = operation
        self.previous = previous
        self.next = next
        self.round = round
        self.fencingToken = fencingToken
    }

    /// The decision, read from what ZooKeeper records for the database: committed exactly when
    /// ZooKeeper shows the version this operation produces (the record is the commit point).
    public func isCommitted(recorded: DatabaseVersion?) -> Bool { recorded == next }
}

/// The coordinator's decision for one round, sent to the members that voted.
public struct RoundDecision: Codable, Sendable, Hashable {
    public var round: String
    public init(round: String) { self.round = round }
}

/// Stardog's database names: a letter, then letters, digits, `_` or `-` (at most 64), and not
/// one of the names the HTTP API uses for itself.
public enum DatabaseName {
    static let reserved: Set<String> = ["admin", "transaction", "databases"]

    public static func validate(_ name: String) throws {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, first.isASCII, first.properties.isAlphabetic, scalars.count <= 64,
            scalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") })
        else {
            throw ReplicatedError(.invalidDatabaseName, "invalid database name '\(name)': a letter, then letters, digits, '_' or '-', at most 64")
        }
        guard !reserved.contains(name.lowercased()) else {
            throw ReplicatedError(.invalidDatabaseName, "invalid database name '\(name)': the name is reserved")
        }
    }
}
