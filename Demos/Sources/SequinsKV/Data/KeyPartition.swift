/// Which partition of a version holds a key: sequins' hashing, bit for bit.
///
/// `hashCode` is Java's `String.hashCode` over the key's raw bytes (each byte as 0…255, 32-bit
/// wrap-around); the partition is `(hashCode & 0x7fffffff) % partitionCount`. For keys whose hash
/// is within 32 of `Int32.max`, Cascading's tuple hash lands them one slot over, so such keys
/// also have an alternate partition that is searched too.
public struct KeyPartition: Sendable, Hashable {
    public var partition: Int
    /// Equal to ``partition`` except for the "pathological" keys described above.
    public var alternate: Int

    public init(partition: Int, alternate: Int) {
        self.partition = partition
        self.alternate = alternate
    }

    /// The partitions of `key` among `partitionCount` (which must be positive).
    @inlinable
    public init(key: some Collection<UInt8>, partitionCount: Int) {
        self.init(hashCode: Self.hashCode(key), partitionCount: partitionCount)
    }

    @inlinable
    public init(hashCode: Int32, partitionCount count: Int) {
        precondition(count > 0, "a key has no partition in a version with no partitions")
        let partition = Int(hashCode & Int32.max) % count
        var alternate = partition
        if hashCode > Int32.max - 32 {
            let tupleHash = Int((hashCode &+ 31) & Int32.max) % count
            alternate = (tupleHash + (count - (31 % count))) % count
        }
        self.init(partition: partition, alternate: alternate)
    }

    /// Java's `String.hashCode` over raw bytes: `h = 31·h + byte`, wrapping.
    @inlinable
    public static func hashCode(_ key: some Collection<UInt8>) -> Int32 {
        var value: Int32 = 0
        for byte in key {
            value = value &* 31 &+ Int32(byte)
        }
        return value
    }
}
