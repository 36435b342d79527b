import Crypto

/// Picks one replica per partition for a query, by consistent hashing of the query's
/// `routeParam` (Sensei's Norbert-era balancer, keyed by node id so that every broker picks the
/// same replica for the same key): each partition has a ring with `bucketsPerNode` points per
/// node at `MD5("node-<id>-<i>")`; a key goes to the first point at or after `MD5(key)`. Removing
/// a node moves only the keys it served.
public struct ConsistentHashRouter: Sendable {
    public let bucketsPerNode: Int
    /// Partition → sorted (point, node id).
    private let rings: [Int: [(point: UInt32, node: Int)]]

    /// - Parameter view: partition → the ids of the live nodes serving it.
    public init(view: [Int: [Int]], bucketsPerNode: Int = 1000) {
        self.bucketsPerNode = bucketsPerNode
        var pointsByNode: [Int: [UInt32]] = [:]
        for node in Set(view.values.flatMap { $0 }) {
            pointsByNode[node] = (0..<bucketsPerNode).map { Self.hash("node-\(node)-\($0)") }
        }
        var rings: [Int: [(point: UInt32, node: Int)]] = [:]
        for (partition, nodes) in view where !nodes.isEmpty {
            var ring: [(point: UInt32, node: Int)] = []
            for node in Set(nodes) { ring += pointsByNode[node]!.map { ($0, node) } }
            ring.sort { $0.point != $1.point ? $0.point < $1.point : $0.node < $1.node }
            rings[partition] = ring
        }
        self.rings = rings
    }

    /// The partitions with at least one live node.
    public var partitions: [Int] { rings.keys.sorted() }

    /// The node that serves `partition` for `key`, or nil when no node serves it.
    public func route(_ key: String, partition: Int) -> Int? {
        route(hash: Self.hash(key), partition: partition)
    }

    /// One node per partition for `key`, grouped: node id → its partitions (sorted).
    public func plan(for key: String) -> [Int: [Int]] {
        let point = Self.hash(key)
        var plan: [Int: [Int]] = [:]
        for partition in partitions {
            if let node = route(hash: point, partition: partition) { plan[node, default: []].append(partition) }
        }
        return plan
    }

    private func route(hash point: UInt32, partition: Int) -> Int? {
        guard let ring = rings[partition], !ring.isEmpty else { return nil }
        var low = 0, high = ring.count
        while low < high {
            let middle = (low + high) / 2
            if ring[middle].point < point { low = middle + 1 } else { high = middle }
        }
        return ring[low == ring.count ? 0 : low].node
    }

    /// The first four bytes of the MD5, little-endian (as Sensei's `MD5HashFunction`).
    static func hash(_ text: String) -> UInt32 {
        let digest = Array(Insecure.MD5.hash(data: Array(text.utf8)))
        return UInt32(digest[0]) | UInt32(digest[1]) << 8 | UInt32(digest[2]) << 16 | UInt32(digest[3]) << 24
    }
}
