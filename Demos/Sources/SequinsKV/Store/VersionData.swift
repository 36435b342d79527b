import DemoSupport
import Foundation
import NIOCore

/// The partitions of one version that this node holds, each served from its mapped file in the
/// local store (immutable once built).
public final class VersionData: Sendable {
    public let partitionCount: Int
    public let partitions: [Int: PartitionFile]
    public let createdAt: Date
    /// `createdAt` as the `Last-Modified` header says it (formatted once, not per request).
    public let lastModified: String

    public init(partitionCount: Int, partitions: [Int: PartitionFile], createdAt: Date) {
        self.partitionCount = partitionCount
        self.partitions = partitions
        self.createdAt = createdAt
        lastModified = HTTPDate.format(createdAt)
    }

    /// Whether this node holds `partition`.
    public func holds(_ partition: Int) -> Bool { partitions[partition] != nil }

    /// Looks `key` up in its partition, then its alternate partition (for the keys Cascading
    /// places one over). Returns nil when neither holds it locally or the key is absent.
    /// - Throws: ``PartitionDamage`` when a page the lookup reads does not match its checksum.
    public func withValue<R>(for key: UnsafeRawBufferPointer, in location: KeyPartition, _ body: (UnsafeRawBufferPointer) -> R) throws(PartitionDamage) -> R? {
        try lookUp(key, in: location) { file, key throws(PartitionDamage) in try file.withValue(for: key, body) }
    }

    /// The value of `key` (in its partition, then its alternate) in a new buffer, or nil.
    /// - Throws: ``PartitionDamage`` when a page the lookup reads does not match its checksum.
    public func value(for key: UnsafeRawBufferPointer, in location: KeyPartition, allocator: ByteBufferAllocator) throws(PartitionDamage) -> ByteBuffer? {
        try lookUp(key, in: location) { file, key throws(PartitionDamage) in try file.value(for: key, allocator: allocator) }
    }

    @inline(__always)
    private func lookUp<R>(
        _ key: UnsafeRawBufferPointer, in location: KeyPartition, _ read: (PartitionFile, UnsafeRawBufferPointer) throws(PartitionDamage) -> R?
    ) throws(PartitionDamage) -> R? {
        var partition = location.partition
        do {
            if let file = partitions[partition], let result = try read(file, key) { return result }
            partition = location.alternate
            if location.alternate != location.partition, let file = partitions[partition] { return try read(file, key) }
            return nil
        } catch {
            var damage = error
            damage.partition = partition
            throw damage
        }
    }

    /// The same data with `partition` served from `file` (a partition built again after damage).
    public func replacing(_ partition: Int, with file: PartitionFile) -> VersionData {
        var partitions = self.partitions
        partitions[partition] = file
        return VersionData(partitionCount: partitionCount, partitions: partitions, createdAt: createdAt)
    }

    public var recordCount: Int { partitions.values.reduce(0) { $0 + $1.count } }
}
