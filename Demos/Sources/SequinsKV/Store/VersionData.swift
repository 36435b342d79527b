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
    public func withValue<R>(for key: UnsafeRawBufferPointer, in location: KeyPartition, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        if let index = partitions[location.partition], let result = try index.withValue(for: key, body) { return result }
        if location.alternate != location.partition, let index = partitions[location.alternate] {
            return try index.withValue(for: key, body)
        }
        return nil
    }

    /// The value of `key` (in its partition, then its alternate) in a new buffer, or nil.
    public func value(for key: UnsafeRawBufferPointer, in location: KeyPartition, allocator: ByteBufferAllocator) -> ByteBuffer? {
        if let index = partitions[location.partition], let value = index.value(for: key, allocator: allocator) { return value }
        if location.alternate != location.partition, let index = partitions[location.alternate] {
            return index.value(for: key, allocator: allocator)
        }
        return nil
    }

    public var recordCount: Int { partitions.values.reduce(0) { $0 + $1.count } }
}
