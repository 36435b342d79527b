/// What a starting, expelled or restarted node does in one join attempt, decided from what it
/// has and what ZooKeeper says (pure: ``ClusterJoin`` is the shell).
public enum JoinDecision: Sendable, Hashable {
    /// ZooKeeper holds no state for this cluster: this node forms it with what it has.
    case formCluster
    /// The node has exactly what ZooKeeper records: it may register now.
    case register
    /// Databases to copy from a live member, and databases to remove here.
    case sync(fetch: [String], drop: [String])
    /// ZooKeeper holds databases this node does not have, and no member is alive to copy them from.
    case refuse(String)
}

public enum JoinPlan {
    /// - Parameters:
    ///   - recorded: ZooKeeper's catalog, or `nil` when the cluster has no state there.
    ///   - local: this node's catalog (after its undecided vote, if any, was resolved).
    ///   - liveMembers: members other than this node.
    public static func decide(recorded: Catalog?, local: Catalog, liveMembers: Int) -> JoinDecision {
        guard let recorded else { return .formCluster }
        if recorded == local { return .register }
        let fetch = recorded.filter { local[$0.key] != $0.value }.keys.sorted()
        let drop = local.keys.filter { recorded[$0] == nil }.sorted()
        // Only a copy needs a live member: databases the cluster dropped are removed here alone.
        guard liveMembers > 0 || fetch.isEmpty else {
            return .refuse(
                "ZooKeeper holds this cluster's state (\(describe(recorded))) but no member is alive, and this node has \(describe(local)); "
                    + "start a node that has the cluster's data, or run `replicated zk clear` to reset the cluster")
        }
        return .sync(fetch: fetch, drop: drop)
    }

    /// Whether attempt `attempt` (from 1) syncs while holding the cluster lock: after
    /// `unlockedAttempts` attempts without it, unless the node never locks.
    public static func syncsUnderLock(attempt: Int, unlockedAttempts: Int, neverLock: Bool) -> Bool {
        !neverLock && attempt > unlockedAttempts
    }

    static func describe(_ catalog: Catalog) -> String {
        catalog.isEmpty ? "no databases" : catalog.sorted { $0.key < $1.key }.map { "\($0.key) at \($0.value.seq)" }.joined(separator: ", ")
    }
}
