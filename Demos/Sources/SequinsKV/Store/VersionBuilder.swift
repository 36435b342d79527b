import DemoSupport
import Foundation

/// Reads a version's SequenceFiles and keeps the records of the selected partitions.
public struct VersionBuilder: Sendable {
    public var files: [String]
    public var partitionCount: Int
    public var selected: Set<Int>
    /// sequins' `max_parallel_loads` (0 means 10).
    public var maxParallelLoads: Int = 10
    /// sequins' `throttle_loads`: a pause after every record.
    public var throttle: Duration = .zero
    /// Called after each file with its path, on the reading thread (tests use it to make a load
    /// hang, like sequins' `test.hang`).
    public var afterFile: (@Sendable (String) -> Void)?

    public init(files: [String], partitionCount: Int, selected: Set<Int>) {
        self.files = files
        self.partitionCount = partitionCount
        self.selected = selected
    }

    /// After this many consecutive keys of one partition this node does not hold, a file is
    /// assumed pre-sharded and the rest of it is skipped (sequins' fast path).
    static let preShardedSkipThreshold = 5000

    /// Reads every file (in parallel, off the cooperative pool) and returns the records of the
    /// selected partitions in the store's buffer format.
    /// - Throws: ``SequenceFileError`` for the first file that cannot be read.
    public func build() async throws -> [Int: [UInt8]] {
        if selected.isEmpty || partitionCount == 0 { return [:] }
        let workers = max(1, min(maxParallelLoads == 0 ? 10 : maxParallelLoads, files.count))
        let queue = WorkQueue(files)
        // Each worker reads, decompresses and joins its files on a thread of its own (afterFile
        // may block: a test's hang), and so does the final join.
        let results = try await withThrowingTaskGroup(of: [Int: [UInt8]].self) { group in
            for _ in 0..<workers {
                group.addTask {
                    try await runOffPool {
                        var merged: [Int: [UInt8]] = [:]
                        while let file = queue.next() {
                            Self.join(try readFile(file), into: &merged)
                            afterFile?(file)
                        }
                        return merged
                    }
                }
            }
            var all: [[Int: [UInt8]]] = []
            for try await part in group { all.append(part) }
            return all
        }
        let selected = self.selected
        return try await runOffPool {
            var merged: [Int: [UInt8]] = [:]
            for partition in selected { merged[partition] = [] }
            for part in results { Self.join(part, into: &merged) }
            return merged
        }
    }

    /// Appends each partition's records to `merged` (taking the buffer itself when it is the first).
    static func join(_ records: [Int: [UInt8]], into merged: inout [Int: [UInt8]]) {
        for (partition, bytes) in records {
            if merged[partition]?.isEmpty ?? true { merged[partition] = bytes } else { merged[partition]!.append(contentsOf: bytes) }
        }
    }

    /// Reads one file and keeps the selected partitions' records.
    public func readFile(_ path: String) throws -> [Int: [UInt8]] {
        var reader = try SequenceFileReader(path: path)
        var isSelected = [Bool](repeating: false, count: partitionCount)
        for partition in selected where partition < partitionCount { isSelected[partition] = true }
        var buffers = [[UInt8]](repeating: [], count: partitionCount)
        var runPartition = -1
        var runLength = 0
        var preSharded = true
        let throttleMicroseconds = throttle.components.seconds * 1_000_000 + throttle.components.attoseconds / 1_000_000_000_000
        try reader.forEachRecord { key, value in
            let location = KeyPartition(key: key, partitionCount: partitionCount)
            let target = isSelected[location.partition] ? location.partition : (isSelected[location.alternate] ? location.alternate : -1)
            if target >= 0 {
                PartitionIndex.append(key: key, value: value, to: &buffers[target])
                runLength = 0
            } else if preSharded {
                if runPartition == -1 { runPartition = location.partition }
                if location.partition == runPartition || location.alternate == runPartition {
                    runLength += 1
                    if runLength > Self.preShardedSkipThreshold { return false }
                } else {
                    preSharded = false
                }
            }
            if throttleMicroseconds > 0 { usleep(UInt32(min(throttleMicroseconds, Int64(UInt32.max)))) }
            return true
        }
        var result: [Int: [UInt8]] = [:]
        for partition in buffers.indices where !buffers[partition].isEmpty { result[partition] = buffers[partition] }
        return result
    }
}

extension VersionBuilder {
    /// Stores the built partitions (then the manifest) and indexes them, one partition per
    /// thread; blocking, so call it off the cooperative pool.
    public static func persistAndIndex(
        _ partitions: [Int: [UInt8]], store: LocalStore?, database: String, version: String, manifest: StoredVersionManifest
    ) throws -> [Int: PartitionIndex] {
        let entries = Array(partitions)
        let results = ResultSlots<PartitionIndex>(count: entries.count)
        DispatchQueue.concurrentPerform(iterations: entries.count) { index in
            let (partition, records) = entries[index]
            results.set(index) {
                let index = try PartitionIndex(records: records)
                try store?.savePartition(partition, stored: index.stored, database: database, version: version)
                return index
            }
        }
        try store?.saveManifest(manifest, database: database, version: version)
        var indexes: [Int: PartitionIndex] = [:]
        for (index, entry) in entries.enumerated() { indexes[entry.key] = try results.get(index) }
        return indexes
    }
}

/// Results filled in by concurrent workers.
final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [Result<T, any Error>?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ work: () throws -> T) {
        let result = Result { try work() }
        lock.withLock { slots[index] = result }
    }
    func get(_ index: Int) throws -> T { try lock.withLock { slots[index] }!.get() }
}

/// Hands out items to workers.
final class WorkQueue<Item: Sendable>: @unchecked Sendable {
    private var items: [Item]
    private let lock = NSLock()
    init(_ items: [Item]) { self.items = items.reversed() }
    func next() -> Item? { lock.withLock { items.popLast() } }
}
