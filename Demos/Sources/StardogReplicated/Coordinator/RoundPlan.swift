/// What one commit round does with the operations queued for it (pure: ``CommitCoordinator`` is
/// the shell): which go ahead, with the versions they move their databases between, and which
/// fail on their own (a transaction on a database that does not exist, or that an earlier
/// operation of the round dropped; a database created twice), without failing the others.
public struct RoundPlan: Sendable, Hashable {
    /// The operations that go ahead, in queue order (operations on one database chain).
    public var prepared: [PreparedOperation] = []
    /// For each of ``prepared``, its position in the queue.
    public var positions: [Int] = []
    /// The operations that fail on their own, by position in the queue.
    public var rejected: [Int: ReplicatedError] = [:]

    /// - Parameters:
    ///   - operations: the queued operations, in arrival order.
    ///   - malformed: positions the coordinator already found unusable (data that does not parse).
    ///   - recorded: ZooKeeper's record of every database the operations name (absent: no such database).
    ///   - newTransactionID: a fresh transaction id.
    public static func plan(
        _ operations: [ClusterOperation], malformed: [Int: ReplicatedError] = [:], recorded: Catalog, newTransactionID: () -> String
    ) -> RoundPlan {
        var plan = RoundPlan()
        plan.rejected = malformed
        var current = recorded
        for (position, operation) in operations.enumerated() where malformed[position] == nil {
            let database = operation.database
            let next: DatabaseVersion?
            switch operation.kind {
            case .transaction:
                guard let version = current[database] else {
                    plan.rejected[position] = ReplicatedError(.unknownDatabase, "unknown database '\(database)'")
                    continue
                }
                next = DatabaseVersion(seq: version.seq + 1, txId: newTransactionID())
            case .createDatabase:
                guard current[database] == nil else {
                    plan.rejected[position] = ReplicatedError(.databaseExists, "database '\(database)' already exists")
                    continue
                }
                next = DatabaseVersion(seq: 0, txId: newTransactionID())
            case .dropDatabase:
                guard current[database] != nil else {
                    plan.rejected[position] = ReplicatedError(.unknownDatabase, "unknown database '\(database)'")
                    continue
                }
                next = nil
            }
            plan.prepared.append(PreparedOperation(operation: operation, previous: current[database], next: next))
            plan.positions.append(position)
            current[database] = next
        }
        return plan
    }

    /// How ZooKeeper's record changes when the round commits, one change per database whose
    /// version it moves (sorted by name): the round's commit point, made as one multi-operation.
    public func recordChanges(recorded: Catalog) -> [RecordChange] {
        PreparedBatch(operations: prepared).outcome.compactMap { outcome in
            switch (recorded[outcome.database], outcome.version) {
            case (nil, nil): return nil  // created and dropped within the round
            case (nil, let version?): return .create(database: outcome.database, version: version)
            case (_?, nil): return .delete(database: outcome.database)
            case (_?, let version?): return .update(database: outcome.database, version: version)
            }
        }
    }
}

/// One change to ZooKeeper's record of the databases.
public enum RecordChange: Sendable, Hashable {
    case create(database: String, version: DatabaseVersion)
    case update(database: String, version: DatabaseVersion)
    case delete(database: String)
}
