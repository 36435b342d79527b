/// Decides which partitions a member holds, from a converged member list: a pure function, no
/// ZooKeeper. Every member computes the same answer from the same list.
///
/// The default strategy reproduces sequins' `pickLocal` exactly: each partition is repeated
/// `replication` times, and slot `i` goes to the `i`-th of the sorted, de-duplicated shard ids
/// modulo their count. Members that share a shard id share a slot (that is how a replacement node
/// takes over a dead node's partitions); members beyond `partitions × replication` get nothing.
/// ``Strategy/rendezvous`` trades that perfect balance for minimal movement when members change.
public struct StaticPartitionAssigner: Sendable, Hashable {
    /// How shard ids are put in order for the sequins strategy.
    public enum ShardOrder: Sendable, Hashable {
        /// As strings ("10" < "2"): what sequins does, so mixed clusters agree.
        case lexicographic
        /// As integers where both ids are integers, as strings otherwise.
        case numeric
    }

    public enum Strategy: Sendable, Hashable {
        /// sequins' round-robin over the sorted shard ids: balanced within one slot.
        case sequins(ShardOrder)
        /// Highest-random-weight hashing: each partition goes to the `replication` ids that hash
        /// highest with it, so adding or removing an id moves only the partitions it gains or loses.
        case rendezvous
    }

    public var partitionCount: Int
    public var replication: Int
    public var strategy: Strategy

    public init(partitionCount: Int, replication: Int, strategy: Strategy = .sequins(.lexicographic)) {
        precondition(partitionCount >= 0, "partitionCount must not be negative")
        precondition(replication >= 1, "replication must be at least 1")
        self.partitionCount = partitionCount
        self.replication = replication
        self.strategy = strategy
    }

    /// The partitions `shardID` holds among `members` (shard ids, repeats allowed; `shardID` is
    /// counted as a member even if absent), sorted.
    ///
    /// - Parameters:
    ///   - maxReplication: sequins' `max_replication`: when at least `replication`, a partition
    ///     that `remoteHolders` says is already held that many times elsewhere is dropped. `nil`,
    ///     0 or less than `replication` disables the check.
    ///   - remoteHolders: for each partition, how many *other* nodes advertise it now.
    public func partitions(
        for shardID: String, members: some Sequence<String>, maxReplication: Int? = nil, remoteHolders: [Int: Int] = [:]
    ) -> [Int] {
        let ids = orderedIDs(Array(members) + [shardID])
        var selected: [Int]
        switch strategy {
        case .sequins:
            guard let mine = ids.firstIndex(of: shardID) else { return [] }
            var chosen = Set<Int>()
            // Slot i = partition i / R goes to ids[i % n]; ours are i ≡ mine (mod n).
            var slot = mine
            while slot < partitionCount * replication {
                chosen.insert(slot / replication)
                slot += ids.count
            }
            selected = chosen.sorted()
        case .rendezvous:
            // Ours when fewer than `replication` ids rank above us (weight, then id, descending).
            let mine = Self.idHash(shardID)
            let others = ids.filter { $0 != shardID }.map { (id: $0, hash: Self.idHash($0)) }
            selected = (0..<partitionCount).filter { partition in
                let myWeight = Self.weight(idHash: mine, partition: partition)
                var above = 0
                for other in others {
                    let weight = Self.weight(idHash: other.hash, partition: partition)
                    if weight > myWeight || (weight == myWeight && other.id > shardID) {
                        above += 1
                        if above >= replication { return false }
                    }
                }
                return true
            }
        }
        if let maxReplication, maxReplication >= replication {
            selected.removeAll { (remoteHolders[$0] ?? 0) >= maxReplication }
        }
        return selected
    }

    /// Every distinct shard id's partitions (without the max-replication check, which depends on
    /// each node's view of the remote holders).
    public func assignment(members: some Sequence<String>) -> [String: [Int]] {
        let ids = orderedIDs(Array(members))
        var result: [String: [Int]] = [:]
        for id in ids { result[id] = partitions(for: id, members: ids) }
        return result
    }

    /// The sorted distinct ids the strategy works on.
    func orderedIDs(_ members: [String]) -> [String] {
        let unique = Set(members)
        switch strategy {
        case .sequins(.lexicographic), .rendezvous:
            return unique.sorted()
        case .sequins(.numeric):
            return unique.sorted { left, right in
                if let l = Int(left), let r = Int(right), l != r { return l < r }
                return left < right
            }
        }
    }

    /// The ids that hold `partition` under rendezvous hashing: the `replication` highest weights
    /// (the definition; ``partitions(for:members:maxReplication:remoteHolders:)`` counts instead of sorting).
    func holders(of partition: Int, ids: [String]) -> [String] {
        let ranked = ids.map { (weight: Self.weight(id: $0, partition: partition), id: $0) }
            .sorted { ($0.weight, $0.id) > ($1.weight, $1.id) }
        return ranked.prefix(replication).map(\.id)
    }

    /// A stable 64-bit weight (FNV-1a over the id, a separator and the partition, then a SplitMix64
    /// finaliser): the same on every machine and in every process, unlike Swift's seeded `Hasher`.
    static func weight(id: String, partition: Int) -> UInt64 {
        weight(idHash: idHash(id), partition: partition)
    }

    /// FNV-1a of the id's bytes and a separator: the part of the weight that does not depend on
    /// the partition, computed once per id.
    static func idHash(_ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return (hash ^ 0x2f) &* 0x0000_0100_0000_01b3
    }

    @inline(__always)
    static func weight(idHash: UInt64, partition: Int) -> UInt64 {
        var hash = idHash
        var value = UInt64(truncatingIfNeeded: partition)
        for _ in 0..<8 {
            hash = (hash ^ (value & 0xff)) &* 0x0000_0100_0000_01b3
            value >>= 8
        }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }
}

/// Shard ids: the smallest free one, as sequins chooses a node's id when none is configured.
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
}

/// A shard id that is not a number, where the smallest free number must be chosen.
public struct ShardIDError: Error, Sendable, Hashable, CustomStringConvertible {
    public var nonNumericID: String
    public var description: String {
        "shard id \"\(nonNumericID)\" is not a number: the smallest free shard id cannot be chosen (configure shard_id on every node, or only numeric ones)"
    }
}
