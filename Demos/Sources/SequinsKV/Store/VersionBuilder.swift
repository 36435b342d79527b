import DemoSupport
import Foundation

/// Reads a version's SequenceFiles and writes the records of the selected partitions into the
/// local store's partition files.
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

    /// Reads every file (in parallel, off the cooperative pool) and writes the selected
    /// partitions' records into partition files in `directory` (created if needed), then indexes
    /// them. Memory stays bounded by the records in flight and one partition's table, whatever
    /// the size of the version. On failure the partition files written so far are deleted.
    /// - Parameter writing: the selected partitions to write (all when nil); a record still goes
    ///   where the whole selection puts it, so a partition written alone (built again after
    ///   damage) holds what it held.
    /// - Throws: ``SequenceFileError`` for the first file that cannot be read, ``StoreError``
    ///   when a partition file cannot be written.
    public func build(into directory: String, writing: Set<Int>? = nil) async throws -> [Int: PartitionFile] {
        let writing = writing.map { $0.intersection(selected) } ?? selected
        if writing.isEmpty || partitionCount == 0 { return [:] }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError("cannot create \(directory): \(error.localizedDescription)")
        }
        var writers = [PartitionFileWriter?](repeating: nil, count: partitionCount)
        do {
            for partition in writing.sorted() where (0..<partitionCount).contains(partition) {
                writers[partition] = try PartitionFileWriter(path: directory + "/" + LocalStore.partitionFileName(partition))
            }
        } catch {
            for writer in writers { writer?.abandon() }
            throw error
        }
        let targets = writers
        do {
            let workers = max(1, min(maxParallelLoads == 0 ? 10 : maxParallelLoads, files.count))
            let queue = WorkQueue(files)
            // Each worker reads, decompresses and appends its files on a thread of its own
            // (afterFile may block: a test's hang). A cancelled build (its version dropped), or one
            // whose worker failed on a file, stops reading at the next batch of records rather
            // than reading every file to the end.
            let cancelled = CancellationFlag()
            try await withTaskCancellationHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<workers {
                        group.addTask {
                            try await runOffPool {
                                do {
                                    while !cancelled.isSet, let file = queue.next() {
                                        try readFile(file, into: targets, cancelled: cancelled)
                                        afterFile?(file)
                                    }
                                } catch {
                                    cancelled.set()  // the build fails: the other workers stop too
                                    throw error
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            } onCancel: {
                cancelled.set()
            }
            try Task.checkCancellation()
            let finishing = targets.enumerated().compactMap { partition, writer in writer.map { (partition, $0) } }
            return try await runOffPool {
                let results = ResultSlots<PartitionFile>(count: finishing.count)
                DispatchQueue.concurrentPerform(iterations: finishing.count) { index in
                    results.set(index) { try finishing[index].1.finish() }
                }
                var files: [Int: PartitionFile] = [:]
                for (index, entry) in finishing.enumerated() { files[entry.0] = try results.get(index) }
                return files
            }
        } catch {
            for writer in targets { writer?.abandon() }
            throw error
        }
    }

    /// Bytes of records a reader gathers for one partition before appending them to its file:
    /// large enough that appends are few, small enough that one reader's batches for all its
    /// partitions stay about 4 MiB (more only past 256 partitions, at 16 KiB each).
    var batchSize: Int { max(16 << 10, min(256 << 10, (4 << 20) / max(1, selected.count))) }

    /// Reads one file and appends the selected partitions' records to their files, until the end
    /// or until `cancelled` is set (then it throws `CancellationError`).
    func readFile(_ path: String, into writers: [PartitionFileWriter?], cancelled: CancellationFlag? = nil) throws {
        var reader = try SequenceFileReader(path: path)
        var isSelected = [Bool](repeating: false, count: partitionCount)
        for partition in selected where (0..<partitionCount).contains(partition) { isSelected[partition] = true }
        var batches = [[UInt8]](repeating: [], count: partitionCount)
        var batchCounts = [Int](repeating: 0, count: partitionCount)
        let batchSize = self.batchSize
        var runPartition = -1
        var runLength = 0
        var preSharded = true
        let throttleMicroseconds = throttle.components.seconds * 1_000_000 + throttle.components.attoseconds / 1_000_000_000_000
        var records = 0
        try reader.forEachRecord { key, value in
            records &+= 1
            if records & 0xFFF == 0, cancelled?.isSet == true { throw CancellationError() }
            let location = KeyPartition(key: key, partitionCount: partitionCount)
            // Every key counts toward whether the file is pre-sharded (one partition throughout),
            // kept or not, as in sequins: a file with runs of several partitions is read whole.
            if preSharded {
                if runPartition == -1 { runPartition = location.partition }
                if location.partition != runPartition && location.alternate != runPartition { preSharded = false }
            }
            let target = isSelected[location.partition] ? location.partition : (isSelected[location.alternate] ? location.alternate : -1)
            if target >= 0 {
                if let writer = writers[target] {
                    if batches[target].capacity == 0 { batches[target].reserveCapacity(batchSize + 1024) }
                    PartitionFile.appendRecord(key: key, value: value, to: &batches[target])
                    batchCounts[target] += 1
                    if batches[target].count >= batchSize {
                        try writer.append(batches[target], count: batchCounts[target])
                        batches[target].removeAll(keepingCapacity: true)
                        batchCounts[target] = 0
                    }
                }
                runLength = 0
            } else if preSharded {
                runLength += 1
                if runLength > Self.preShardedSkipThreshold { return false }
            }
            if throttleMicroseconds > 0 { usleep(UInt32(min(throttleMicroseconds, Int64(UInt32.max)))) }
            return true
        }
        for partition in batches.indices where !batches[partition].isEmpty {
            try writers[partition]!.append(batches[partition], count: batchCounts[partition])
        }
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
