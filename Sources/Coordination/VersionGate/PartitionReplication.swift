/// How many holders each partition of a version has, from the version's advertisements
/// (``PartitionAdvertisement``). Pure.
public struct PartitionReplication: Sendable, Hashable {
    /// Holders per partition, index = partition number.
    public var counts: [Int]
    /// The advertisement node names the counts were taken from (empty when built from counts alone).
    public var advertisements: [String]

    /// Replication with these holder counts (index = partition number).
    public init(counts: [Int]) {
        self.counts = counts
        advertisements = []
    }

    /// Counts the advertisements among `advertisements` (node names under a version's node);
    /// names that are not advertisements, or name a partition out of range, are ignored.
    public init(advertisements: [String], partitionCount: Int) {
        var counts = Array(repeating: 0, count: partitionCount)
        for name in advertisements {
            guard let partition = PartitionAdvertisement.partition(ofName: name), partition < partitionCount else { continue }
            counts[partition] += 1
        }
        self.counts = counts
        self.advertisements = advertisements
    }

    /// For each partition, the holders advertising it, leaving out `holder` (this member).
    public func holders(excluding holder: String?) -> [Int: [String]] {
        var holders: [Int: [String]] = [:]
        for name in advertisements {
            guard let advertisement = PartitionAdvertisement(name: name), advertisement.partition < counts.count,
                advertisement.holder != holder
            else { continue }
            holders[advertisement.partition, default: []].append(advertisement.holder)
        }
        return holders
    }

    /// The replication as `holder` sees it while it holds `partitions`: its own advertisements
    /// (written or not yet, or left by its previous process) are replaced by what it holds now,
    /// so a member that holds a partition counts for it before its advertisement's round trip,
    /// as sequins' members count their local partitions. Partitions out of range are ignored. A
    /// replication built from counts alone (``init(counts:)``) counts other members only.
    public func counting(_ partitions: some Sequence<Int>, heldBy holder: String) -> PartitionReplication {
        var counts = advertisements.isEmpty ? self.counts : Array(repeating: 0, count: self.counts.count)
        var advertisements: [String] = []
        for name in self.advertisements {
            guard let advertisement = PartitionAdvertisement(name: name), advertisement.partition < counts.count,
                advertisement.holder != holder
            else { continue }
            counts[advertisement.partition] += 1
            advertisements.append(name)
        }
        for partition in Set(partitions) where counts.indices.contains(partition) {
            counts[partition] += 1
            advertisements.append(PartitionAdvertisement(partition: partition, holder: holder).name)
        }
        var replication = PartitionReplication(counts: counts)
        replication.advertisements = advertisements
        return replication
    }

    /// For each partition, how many holders other than `holder` advertise it.
    public func remoteCounts(excluding holder: String) -> [Int: Int] {
        holders(excluding: holder).mapValues(\.count)
    }

    /// The partitions with fewer than `minReplication` holders.
    public func missing(minReplication: Int) -> [Int] {
        counts.indices.filter { counts[$0] < minReplication }
    }

    /// Whether every partition has at least `minReplication` holders (an empty version is ready).
    public func isReady(minReplication: Int) -> Bool {
        counts.allSatisfy { $0 >= minReplication }
    }
}
