/// How many holders each partition of a version has, from its advertisements: pure.
public struct PartitionReplication: Sendable, Hashable {
    /// Holders per partition, index = partition number.
    public var counts: [Int]
    /// The advertisement names the counts were taken from (empty when built from counts alone).
    public var advertisements: [String]

    public init(counts: [Int]) {
        self.counts = counts
        advertisements = []
    }

    /// Counts the advertisements `<%05d partition>@<host:port>` (sequins' names); names that are
    /// not advertisements, or name a partition out of range, are ignored.
    public init(advertisements: [String], partitionCount: Int) {
        var counts = Array(repeating: 0, count: partitionCount)
        for name in advertisements {
            guard let partition = Self.partition(of: name), partition < partitionCount else { continue }
            counts[partition] += 1
        }
        self.counts = counts
        self.advertisements = advertisements
    }

    /// For each partition, the addresses advertising it, leaving out `address` (this node).
    public func holders(excluding address: String?) -> [Int: [String]] {
        var holders: [Int: [String]] = [:]
        for name in advertisements {
            guard let (partition, holder) = Self.parse(name), partition < counts.count, holder != address else { continue }
            holders[partition, default: []].append(holder)
        }
        return holders
    }

    /// For each partition, how many addresses other than `address` advertise it.
    public func remoteCounts(excluding address: String) -> [Int: Int] {
        holders(excluding: address).mapValues(\.count)
    }

    /// The partitions with fewer than `minReplication` holders.
    public func missing(minReplication: Int) -> [Int] {
        counts.indices.filter { counts[$0] < minReplication }
    }

    /// Whether every partition has at least `minReplication` holders (an empty version is ready).
    public func isReady(minReplication: Int) -> Bool {
        counts.allSatisfy { $0 >= minReplication }
    }

    /// The advertisement name for `partition` held at `address`: `00007@10.0.0.5:9599`.
    public static func advertisementName(partition: Int, address: String) -> String {
        let digits = String(partition)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits + "@" + address
    }

    /// The partition number of an advertisement name, read without allocating.
    static func partition(of name: String) -> Int? {
        var value = 0
        var digits = 0
        for byte in name.utf8 {
            if byte == UInt8(ascii: "@") { return digits > 0 ? value : nil }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 18 else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return nil
    }

    /// The partition and address of an advertisement name.
    public static func parse(_ name: String) -> (partition: Int, address: String)? {
        guard let at = name.firstIndex(of: "@"), let partition = Int(name[..<at]), partition >= 0 else { return nil }
        return (partition, String(name[name.index(after: at)...]))
    }
}
