import ZooKeeper

extension ShardID {
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
    ///   ``CoordinationError``/``ZooKeeperError`` from the lock and the reads; what `register` throws.
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
                do { names = try await client.getChildren(membersPath).names } catch let error as ZooKeeperError where error.code == .noNode {
                    names = []
                }
            }
            let id = try smallestFree(in: names.compactMap(shardIDOfMember))
            try await register(id)
            return (id, true)
        }
    }
}
