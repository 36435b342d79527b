/// Decides which partitions a member holds, from a converged list of member ids: a pure
/// function, no ZooKeeper. Every member computes the same answer from the same list, so a
/// cluster agrees on its assignment without storing it anywhere.
///
/// Each partition is held by `replication` distinct ids. Members that share an id share its
/// partitions (that is how a replacement takes over a dead member's share: it starts with the
/// dead member's id). Two strategies:
/// - ``Strategy/roundRobin(_:)`` (the default): each partition is repeated `replication` times
///   and slot `i` goes to the `i`-th of the sorted, distinct ids, modulo their count; balanced
///   within one slot, and ids beyond `partitions × replication` get nothing. With
///   ``IDOrder/lexicographic`` this is sequins' `pickLocal` exactly.
/// - ``Strategy/rendezvous``: highest-random-weight hashing, which trades that perfect balance
///   for minimal movement when members come and go.
public struct StaticPartitionAssigner: Sendable, Hashable {
    /// How member ids are put in order for ``Strategy/roundRobin(_:)``.
    public enum IDOrder: Sendable, Hashable {
        /// As strings ("10" < "2"), so that every implementation agrees without parsing ids
        /// (sequins orders its shard ids this way).
        case lexicographic
        /// Integer ids first, by value, then the others as strings.
        case numeric
    }

    /// How partitions are spread over the ids.
    public enum Strategy: Sendable, Hashable {
        /// Round-robin over the sorted ids: balanced within one slot.
        case roundRobin(IDOrder)
        /// Highest-random-weight hashing: each partition goes to the `replication` ids that hash
        /// highest with it, so adding or removing an id moves only the partitions it gains or loses.
        case rendezvous
    }

    /// How many partitions there are (numbered from 0).
    public var partitionCount: Int
    /// How many distinct ids hold each partition (fewer when there are fewer ids).
    public var replication: Int
    /// How partitions are spread over the ids.
    public var strategy: Strategy

    /// An assigner of `partitionCount` partitions, each held by `replication` ids.
    /// - Precondition: `partitionCount >= 0` and `replication >= 1`.
    public init(partitionCount: Int, replication: Int, strategy: Strategy = .roundRobin(.lexicographic)) {
        precondition(partitionCount >= 0, "partitionCount must not be negative")
        precondition(replication >= 1, "replication must be at least 1")
        self.partitionCount = partitionCount
        self.replication = replication
        self.strategy = strategy
    }

    /// The partitions `memberID` holds among `members` (member ids, repeats allowed; `memberID`
    /// is counted as a member even if absent), sorted.
    ///
    /// - Parameters:
    ///   - memberID: the member asking.
    ///   - members: the ids of every member (a converged membership).
    ///   - maxReplication: an upper bound on copies: when at least `replication`, a partition that
    ///     `remoteHolders` says is already held that many times elsewhere is dropped (a member
    ///     that joins late does not add a copy nobody needs). `nil`, 0 or less than `replication`
    ///     disables the check.
    ///   - remoteHolders: for each partition, how many *other* members hold it now (for example
    ///     ``VersionGate/remoteHolders()``).
    public func partitions(
        for memberID: String, members: some Sequence<String>, maxReplication: Int? = nil, remoteHolders: [Int: Int] = [:]
    ) -> [Int] {
        let ids = orderedIDs(Array(members) + [memberID])
        var selected: [Int]
        switch strategy {
        case .roundRobin:
            guard let mine = ids.firstIndex(of: memberID) else { return [] }
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
            let mine = Self.idHash(memberID)
            let others = ids.filter { $0 != memberID }.map { (id: $0, hash: Self.idHash($0)) }
            selected = (0..<partitionCount).filter { partition in
                let myWeight = Self.weight(idHash: mine, partition: partition)
                var above = 0
                for other in others {
                    let weight = Self.weight(idHash: other.hash, partition: partition)
                    if weight > myWeight || (weight == myWeight && other.id > memberID) {
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

    /// Every distinct member id's partitions (without the max-replication check, which depends on
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
        case .roundRobin(.lexicographic), .rendezvous:
            return unique.sorted()
        case .roundRobin(.numeric):
            // One total order, so that every member sorts the same ids the same way: numeric
            // ids first, by value, then the others as text (comparing by value only when both
            // were numbers was not transitive: "10x" < "2" < "10" < "10x").
            return unique.sorted { left, right in
                switch (Int(left), Int(right)) {
                case let (l?, r?) where l != r: return l < r
                case (_?, nil): return true
                case (nil, _?): return false
                default: return left < right
                }
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
