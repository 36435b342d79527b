import ZooKeeper

extension ShardID {
    /// Chooses this node's shard id under a distributed lock, so that nodes starting together get
    /// distinct ids (sequins' `id_assignment_lock`): while holding the lock, reads the member
    /// names under `membersPath`, takes the smallest free id, and calls `register` with it (which
    /// should publish the member node, so the next node sees the id taken).
    /// - Parameter shardIDOfMember: extracts the shard id from a member node name; by default the
    ///   part before `@` (sequins' `<shardID>@<host:port>`).
    public static func claim(
        client: ZooKeeperClient, lockPath: String, membersPath: String,
        shardIDOfMember: @escaping @Sendable (String) -> String? = { name in name.split(separator: "@").first.map(String.init) },
        timeout: Duration? = nil,
        register: @escaping @Sendable (String) async throws -> Void
    ) async throws -> String {
        try await DistributedLock(client: client, path: lockPath).withLock(timeout: timeout) { _ in
            let names: [String]
            do { names = try await client.getChildren(membersPath).names } catch let error as ZooKeeperError where error.code == .noNode {
                names = []
            }
            let id = try smallestFree(in: names.compactMap(shardIDOfMember))
            try await register(id)
            return id
        }
    }
}
