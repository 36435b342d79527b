import ZooKeeper

/// A counter every process can read, watch and change with compare-and-set: Curator's
/// `SharedCount` on the same node (a 4-byte big-endian integer), so Swift and Java processes
/// share it.
///
/// ```swift
/// let count = SharedCount(client: client, path: "/counters/workers")
/// try await count.start()
/// let current = try await count.get()
/// if try await count.trySet(current.value + 1, expecting: current) { print("incremented") }
/// ```
public final class SharedCount: Sendable {
    /// The count's node.
    public let node: TypedNode<BigEndianCodec<Int32>>
    /// The value the node is created with when it does not exist.
    public let seed: Int32

    /// A count at `path` (nothing is written until ``start()``).
    public init(client: ZooKeeperClient, path: String, seed: Int32 = 0) {
        node = TypedNode(client: client, path: path, codec: BigEndianCodec())
        self.seed = seed
    }

    /// A value and the node version it was read at: what ``trySet(_:expecting:)`` compares.
    public struct VersionedValue: Sendable, Hashable {
        /// The count.
        public var value: Int32
        /// The node's version when it was read.
        public var version: Int32
    }

    /// Creates the node with ``seed`` if it does not exist (its parents as containers).
    public func start() async throws {
        do {
            try await node.create(seed, parents: .container)
        } catch let error as ZooKeeperError where error.code == .nodeExists {}
    }

    /// The count now, with its version.
    /// - Throws: `.marshallingError` naming the node when it does not hold 4 bytes; `.noNode`
    ///   before ``start()``; what the client throws.
    public func get() async throws -> VersionedValue {
        let (value, stat) = try await node.get()
        return VersionedValue(value: value, version: stat.version)
    }

    /// Sets the count whatever it is.
    public func set(_ value: Int32) async throws {
        try await node.set(value)
    }

    /// Sets the count only if it is still at `previous`'s version (compare-and-set).
    /// - Returns: `false` when someone changed it since `previous` was read.
    public func trySet(_ value: Int32, expecting previous: VersionedValue) async throws -> Bool {
        do {
            try await node.set(value, version: previous.version)
            return true
        } catch let error as ZooKeeperError where error.code == .badVersion {
            return false
        }
    }

    /// Adds `delta` with compare-and-set, reading again after every conflict.
    /// - Returns: the new count.
    @discardableResult
    public func add(_ delta: Int32) async throws -> Int32 {
        while true {
            let current = try await get()
            if try await trySet(current.value &+ delta, expecting: current) { return current.value &+ delta }
        }
    }

    /// The count as a stream: the value now, then after every change; a node that does not hold
    /// a count is reported as `TypedUpdate.undecodable(_:)` and the stream goes on.
    public func updates() -> TypedNodeUpdates<BigEndianCodec<Int32>> {
        node.updates()
    }
}
