/// A page of a partition file that does not match its checksum: the lookup that read it is not
/// answered from it, and the node builds the partition again from the source.
public struct PartitionDamage: Error, Sendable, Hashable, CustomStringConvertible {
    /// The partition file.
    public var path: String
    /// The page: the file's 4 KiB page `page` (``PartitionFile/pageSize``), counted from byte 0.
    public var page: Int
    /// The page's bytes in the file.
    public var bytes: Range<Int>
    /// The partition the file holds, once a version's lookup names it.
    public var partition: Int?

    public var description: String {
        "partition file \(path) is corrupt: page \(page) (bytes \(bytes.lowerBound) to \(bytes.upperBound)) does not match its checksum"
    }
}
