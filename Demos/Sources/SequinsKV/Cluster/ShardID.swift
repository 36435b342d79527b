import Coordination
import ZooKeeper

/// sequins' shard ids: how a node gets one when none is configured.
public enum ShardID {
    /// The smallest positive integer not used by `members` (sequins' `SmallestAvailableShardID`,
    /// without its duplicate-id bug: {1, 1, 2} gives "3").
    /// - Throws: a ``ShardIDError`` naming the first non-numeric id (sequins refuses to start then).
    public static func smallestFree(in members: some Sequence<String>) throws(ShardIDError) -> String {
        var used = Set<Int>()
        for member in members {
            guard let number = Int(member) else { throw ShardIDError(nonNumericID: member) }
            used.insert(number)
        }
        var candidate = 1
        while used.contains(candidate) { candidate += 1 }
        return String(candidate)
    }

    /// Registers this node under a shard id while holding a distributed lock, so that nodes
    /// starting together get distinct ids (sequins' `id_assignment_lock`).
    ///
    /// While holding the lock: if `existing` is set (a configured id, or one kept from an earlier
    /// run) it is used as is; otherwise, after the member list under `membersPath` has been quiet
    /// for `quietPeriod` (if given), the smallest id no member uses is chosen. `register` is then
    /// called with the id, still under the lock; it should publish the member node, so the next
    /// node sees the id taken.
    /// - Parameter shardIDOfMember: extracts the shard id from a member node name; by default the
    ///   part before `@` (sequins' `<shardID>@<host:port>`).
    /// - Returns: the id and whether it was chosen here (false when `existing` was used).
    /// - Throws: ``ShardIDError`` for a non-numeric member id when one must be chosen;
    ///   `CoordinationError`/`ZooKeeperError` from the lock and the reads; what `register` throws.
    public static func claim(
        client: ZooKeeperClient, lockPath: String, membersPath: String, existing: String? = nil, quietPeriod: Duration? = nil,
        shardIDOfMember: @escaping @Sendable (String) -> String? = { name in name.split(separator: "@").first.map(String.init) },
        timeout: Duration? = nil,
        register: @escaping @Sendable (String) async throws -> Void
    ) async throws -> (id: String, chosen: Bool) {
        try await DistributedLock(client: client, path: lockPath).withLock(timeout: timeout) { _ in
            if let existing {
                try await register(existing)
                return (existing, false)
            }
            let names: [String]
            if let quietPeriod {
                names = Array(try await MembershipWatcher(client: client, group: membersPath).awaitStable(quietPeriod: quietPeriod).keys)
            } else {
                names = try await client.childrenIfExists(membersPath)
            }
            let id = try smallestFree(in: names.compactMap(shardIDOfMember))
            try await register(id)
            return (id, true)
        }
    }
}

/// A shard id that is not a number, where the smallest free number must be chosen.
public struct ShardIDError: Error, Sendable, Hashable, CustomStringConvertible {
    public var nonNumericID: String
    public var description: String {
        "shard id \"\(nonNumericID)\" is not a number: the smallest free shard id cannot be chosen (configure shard_id on every node, or only numeric ones)"
    }
}
