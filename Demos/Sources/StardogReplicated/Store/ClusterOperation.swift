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

    /// The size of its triples written out (what a round's prepare carries of it).
    var size: Int { add.utf8.count + remove.utf8.count }

    /// Refuses an operation whose triples, written out as N-Triples, exceed what a transaction may
    /// hold (``StardogHTTP/maxBody``). Written out, a body can grow (a control character in a
    /// literal takes six bytes), and a round's prepare must stay within what members accept.
    func checkSize() throws {
        guard size <= StardogHTTP.maxBody else {
            throw ReplicatedError(
                .bodyTooLarge, "the transaction's triples, written out as N-Triples, take \(size) bytes, more than the \(StardogHTTP.maxBody >> 20) MiB a transaction may")
        }
    }
}

/// One operation of a round with the versions it moves its database between: `previous` (`nil`:
/// the database does not exist yet) and `next` (`nil`: the database is dropped).
public struct PreparedOperation: Codable, Sendable, Hashable {
    public var operation: ClusterOperation
    public var previous: DatabaseVersion?
    public var next: DatabaseVersion?

    public init(operation: ClusterOperation, previous: DatabaseVersion?, next: DatabaseVersion?) {
        self.operation = operation
        self.previous = previous
        self.next = next
    }
}

/// The operations of one commit round, which a member votes yes to (durably, in one write) and
/// then waits for the coordinator's decision on. `round` names this attempt (commit and abort
/// refer to it); `fencingToken` is the coordinator's cluster-lock token, which grows with every
/// holder, so a member can tell a later coordinator's prepare from a late one of an earlier
/// coordinator.
public struct PreparedBatch: Codable, Sendable, Hashable {
    /// In the order they apply; operations on one database chain (`previous` of each is `next` of
    /// the one before).
    public var operations: [PreparedOperation]
    public var round: String
    public var fencingToken: Int64

    public init(operations: [PreparedOperation], round: String = UUID().uuidString, fencingToken: Int64 = 0) {
        self.operations = operations
        self.round = round
        self.fencingToken = fencingToken
    }

    /// A batch of one operation.
    public init(_ operation: PreparedOperation, round: String = UUID().uuidString, fencingToken: Int64 = 0) {
        self.init(operations: [operation], round: round, fencingToken: fencingToken)
    }

    /// Every database the batch touches with the version it leaves it at (`nil`: dropped), sorted by name.
    public var outcome: [DatabaseOutcome] {
        var last: [String: DatabaseVersion?] = [:]
        for prepared in operations { last[prepared.operation.database] = .some(prepared.next) }
        return last.map { DatabaseOutcome(database: $0.key, version: $0.value) }.sorted { $0.database < $1.database }
    }

    /// The databases the batch's transactions write log lines to.
    var transactionDatabases: Set<String> {
        Set(operations.filter { $0.operation.kind == .transaction }.map(\.operation.database))
    }

    /// The decision, read from what ZooKeeper records: committed exactly when ZooKeeper shows, for
    /// every database the batch touches, the version the batch leaves it at (the record of a round
    /// is one atomic multi-operation, and it is the commit point).
    public func isCommitted(recorded: (String) -> DatabaseVersion?) -> Bool {
        outcome.allSatisfy { recorded($0.database) == $0.version }
    }
}

/// A database and the version a round leaves it at (`nil`: dropped).
public struct DatabaseOutcome: Sendable, Hashable {
    public var database: String
    public var version: DatabaseVersion?
}

/// The coordinator's decision for one round, sent to the members that voted.
public struct RoundDecision: Sendable, Hashable {
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
