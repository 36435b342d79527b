import DemoSupport
import Foundation
import Logging
import Synchronization

/// A search node's partitions: the in-memory indexes, their store on disk, and the ingestion of
/// gateway lines (each line parsed, its partition computed, kept only if the partition is this
/// node's; a malformed line is counted and logged, never fatal).
public final class NodeIndex: Sendable {
    public let schema: SearchSchema
    public let partitions: [Int]
    public let partitionCount: Int
    public let sharding: ShardingStrategy
    let store: PartitionStore
    let logger: Logger
    /// Each partition under its own lock, so that a node searches its partitions in parallel.
    private let indexes: [Int: LockedPartition]
    private let state = Mutex(State())
    /// When segments are merged.
    let mergePolicy: MergePolicy
    /// Each partition's merges run on its queue, one at a time (partitions merge in parallel).
    private let merges: [Int: DispatchQueue]

    struct State {
        var report = IngestReport()
        var searchesByPartition: [Int: Int] = [:]
        /// Live documents per partition, kept so that asking never waits for a search.
        var documentsByPartition: [Int: Int] = [:]
        /// The gateway position consumed (the store's, kept in memory).
        var gatewayPosition = FileGateway.Position()
        /// Partitions with a merge check queued and not started.
        var mergesQueued: Set<Int> = []
    }

    final class LockedPartition: @unchecked Sendable {  // the index is only touched under the lock
        private let lock = NSLock()
        private let index: PartitionIndex

        init(_ index: PartitionIndex) { self.index = index }

        func withIndex<T>(_ body: (PartitionIndex) throws -> T) rethrows -> T {
            try lock.withLock { try body(index) }
        }

        /// `body` with the index if nothing holds it now (an ingest or a merge may), else nil.
        func withIndexIfFree<T>(_ body: (PartitionIndex) -> T) -> T? {
            guard lock.try() else { return nil }
            defer { lock.unlock() }
            return body(index)
        }
    }

    /// How many searches each partition has answered (which replica the brokers pick).
    public var searchesByPartition: [Int: Int] { state.withLock { $0.searchesByPartition } }

    /// Counters of everything ingested since the node started.
    public struct IngestReport: Sendable, Hashable {
        public var indexed = 0
        /// Lines for partitions of other nodes.
        public var skipped = 0
        public var malformed = 0
    }

    /// Opens (or creates) the store under `directory` and reopens every partition from its
    /// segments (no JSON parsed, nothing tokenized). A store of the earlier format (documents as
    /// JSON lines) is indexed once and written as segments.
    /// - Throws: ``SegmentFile/Corrupt`` or `DurableFile.Failure` naming a file that cannot be used.
    public init(
        schema: SearchSchema, partitions: [Int], partitionCount: Int, sharding: ShardingStrategy, directory: String, mergePolicy: MergePolicy = MergePolicy(),
        logger: Logger
    ) throws {
        self.schema = schema
        self.mergePolicy = mergePolicy
        merges = Dictionary(uniqueKeysWithValues: partitions.map { ($0, DispatchQueue(label: "search.merges.partition-\($0)", qos: .utility)) })
        self.partitions = partitions
        self.partitionCount = partitionCount
        self.sharding = sharding
        self.logger = logger
        store = try PartitionStore(directory: directory, partitions: partitions, layout: (partitionCount, "\(sharding)"))
        var indexes: [Int: LockedPartition] = [:]
        var imported: [PartitionStore.Change] = []
        var legacy: [Int: [String]] = [:]
        for partition in partitions { legacy[partition] = store.legacyDocuments(partition: partition) }
        let stored = partitions.filter { legacy[$0] == nil }
        let loaded = try store.load(partitions: stored, schema: schema)
        for (partition, index) in zip(stored, Parallel.map(stored) { LockedPartition(PartitionIndex(schema: schema, segments: loaded[$0]!.segments, deleted: loaded[$0]!.deleted)) }) {
            indexes[partition] = index
        }
        for (partition, lines) in legacy.sorted(by: { $0.key < $1.key }) {
            let index = PartitionIndex(schema: schema)
            // Stored lines were valid when indexed; a schema change can make one invalid.
            for line in lines { if let document = try? SearchDocument(jsonLine: line, schema: schema) { index.add(document) } }
            if let segment = index.seal() {
                let (documents, lengths) = index.contents(of: segment)
                imported.append(.init(partition: partition, segment: SegmentFile.encode(segment, documents: documents, lengths: lengths, schemaColumns: schema.columns.count)))
            }
            _ = index.takeRetired()
            indexes[partition] = LockedPartition(index)
        }
        if !imported.isEmpty {
            try store.commit(imported, position: store.legacyPosition() ?? store.position())
            store.removeLegacyFiles()
            logger.notice("indexed the earlier store format once and wrote it as segments", metadata: ["search.partitions": "\(imported.map(\.partition))"])
        }
        self.indexes = indexes
        let (counts, position) = (indexes.mapValues { $0.withIndex(\.liveCount) }, store.position())
        state.withLock { state in
            state.documentsByPartition = counts
            state.gatewayPosition = position
        }
    }

    /// Where the gateway should continue for this node.
    public var gatewayPosition: FileGateway.Position { state.withLock { $0.gatewayPosition } }

    public var report: IngestReport { state.withLock { $0.report } }

    /// The number of documents this node holds (all its partitions).
    public var documentCount: Int { state.withLock { $0.documentsByPartition.values.reduce(0, +) } }

    /// The number of documents per partition.
    public var documentsByPartition: [Int: Int] { state.withLock { $0.documentsByPartition } }

    /// Reads the next lines (at most `maxLines`) of `gateway` from this index's position and
    /// ingests them; how many lines it read (0 at the end). Blocking: file I/O and indexing.
    @discardableResult
    public func ingestNextBatch(from gateway: FileGateway, maxLines: Int = 10_000) throws -> Int {
        let (lines, next) = try gateway.read(from: gatewayPosition, maxLines: maxLines)
        if lines.isEmpty { return 0 }
        try ingest(lines, next: next)
        return lines.count
    }

    /// Indexes a batch of gateway lines, stores the accepted ones, and records `next` as consumed.
    @discardableResult
    public func ingest(_ lines: [FileGateway.Line], next: FileGateway.Position) throws -> IngestReport {
        var batch = IngestReport()
        // Parsed on every core (in order: each chunk fills its own slots).
        let parsed = Parallel.map(lines) { line -> Result<(partition: Int, document: SearchDocument)?, any Error> in
            guard !line.text.allSatisfy(\.isWhitespace) else { return .success(nil) }
            return Result {
                let document = try SearchDocument(jsonLine: line.text, schema: schema)
                guard let partition = sharding.partition(uid: document.uid, partitionCount: partitionCount) else {
                    throw SearchDocument.Error(description: "uid \(document.uid) is not an integer (sensei.sharding.strategy=hash shards any uid)")
                }
                return (partition, document)
            }
        }
        var byPartition: [Int: [SearchDocument]] = [:]
        for (line, outcome) in zip(lines, parsed) {
            switch outcome {
            case .success(nil): continue
            case .success(let (partition, document)?):
                if partitions.contains(partition) {
                    byPartition[partition, default: []].append(document)
                    batch.indexed += 1
                } else {
                    batch.skipped += 1
                }
            case .failure(let error):
                batch.malformed += 1
                logger.warning("skipped a malformed gateway line", metadata: ["search.line": "\(line.number)", "search.error": "\(error)"])
            }
        }
        // Each partition (in parallel) indexes its documents and seals them as one segment,
        // written with the ids they replaced; then the manifest commits the batch with the
        // position after it.
        let work = byPartition.sorted { $0.key < $1.key }
        let changes = Parallel.map(work) { partition, documents in
            indexes[partition]!.withIndex { index -> PartitionStore.Change in
                for document in documents { index.add(document) }
                var change = PartitionStore.Change(partition: partition, deleted: index.takeRetired())
                if let segment = index.seal() {
                    let (documents, lengths) = index.contents(of: segment)
                    change.segment = SegmentFile.encode(segment, documents: documents, lengths: lengths, schemaColumns: schema.columns.count)
                }
                return change
            }
        }
        try store.commit(changes, position: next)
        scheduleMerges(partitions: byPartition.keys.sorted())
        let counts = indexes.mapValues { $0.withIndex(\.liveCount) }
        state.withLock { state in
            state.documentsByPartition = counts
            state.gatewayPosition = next
            state.report.indexed += batch.indexed
            state.report.skipped += batch.skipped
            state.report.malformed += batch.malformed
        }
        return batch
    }

    /// Queues a merge check of each partition on its merge queue (off the ingestion path; searches
    /// go on), unless one is queued already.
    private func scheduleMerges(partitions: [Int]) {
        for partition in partitions {
            guard state.withLock({ $0.mergesQueued.insert(partition).inserted }) else { continue }
            merges[partition]!.async { [self] in
                state.withLock { _ = $0.mergesQueued.remove(partition) }  // a commit from now on queues another check
                do {
                    while try mergeOnce(partition: partition) {}
                } catch {
                    // The segments stay as they were (still searched, still committed); the next
                    // commit tries again.
                    logger.error("a merge failed", metadata: ["search.partition": "\(partition)", "search.error": "\(error)"])
                }
            }
        }
    }

    /// Waits until the merges queued so far are done (before closing, or to measure).
    public func finishMerges() { for queue in merges.values { queue.sync {} } }

    /// Merges the adjacent segments of `partition` that ``MergePolicy`` picks, if any: built from
    /// the immutable segments without holding the partition, written, committed, then swapped in.
    /// Whether it merged.
    func mergeOnce(partition: Int) throws -> Bool {
        let slot = indexes[partition]!
        // Only committed segments: ingestion seals a segment before committing it, so the
        // manifest's segments are the index's first ones.
        let committed = store.segmentFiles(partition: partition).count
        guard let (old, live, documents, lengths) = slot.withIndex({ index -> ([Segment], [Bool], [SearchDocument?], [[Int32]])? in
            guard let candidates = index.mergeCandidates(policy: mergePolicy, among: committed) else { return nil }
            var documents: [SearchDocument?] = []
            var lengths: [[Int32]] = []
            for segment in candidates {
                let contents = index.contents(of: segment)
                documents += contents.documents
                lengths = lengths.isEmpty ? contents.lengths : zip(lengths, contents.lengths).map { $0 + $1 }
            }
            return (candidates, index.liveSnapshot, documents, lengths)
        }) else { return false }
        let merged = Segment.merged(old, isLive: { live[Int($0)] })
        let bytes = SegmentFile.encode(merged, documents: documents, lengths: lengths, schemaColumns: schema.columns.count)
        // Only this queue replaces segments; ingestion only appends, so the run's place stays.
        let first = slot.withIndex { index in index.segments.firstIndex { $0 === old[0] } }
        guard let first else { return false }
        try store.commitMerge(partition: partition, replacing: first..<(first + old.count), with: bytes)
        slot.withIndex { _ = $0.replace(old, with: merged) }
        logger.debug(
            "merged segments", metadata: ["search.partition": "\(partition)", "search.segments": "\(old.count)", "search.documents": "\(merged.count)"])
        return true
    }

    /// Searches `request.partitions` (those this node holds; all of them when nil) and combines
    /// their results: in parallel, each on a thread of its own, or with `onCallingTask` (and for a
    /// single partition) one after another on the calling task, each that nothing holds. A
    /// partition that an ingest or a merge holds is searched off the pool, and not waited for
    /// beyond `timeout` (Sensei's `sensei.node.partition.timeout`): it then contributes nothing and
    /// an `ExecutionTimeout` error; one this node does not hold, a `PartitionCallError`.
    /// - Throws: ``RequestError`` or ``QueryParseError`` when the request itself is wrong.
    public func search(_ request: SearchRequest, timeout: Duration = .seconds(8), onCallingTask: Bool = false) async throws -> SearchResult {
        let query = try request.validated(against: schema)
        let wanted = request.partitions ?? partitions
        var errors: [SearchResult.SearchError] = []
        for partition in wanted where indexes[partition] == nil {
            errors.append(.init(errorType: "PartitionCallError", message: "partition \(partition) is not on this node", errorCode: 251))
        }
        let held = wanted.filter { indexes[$0] != nil }
        // The calling task saves the hop to a search thread and back and the timer, which is most
        // of what a broker's call to a node costs beyond the search, and all a broker gains by
        // spreading its own partitions over cores that its other nodes are searching on.
        var outcomes: [PartitionOutcome] = []
        var busy = held
        if held.count == 1 || onCallingTask {
            busy = []
            for partition in held {
                if let outcome = indexes[partition]!.withIndexIfFree({ Self.search($0, partition, request, query: query) }) {
                    outcomes.append(outcome)
                } else {
                    busy.append(partition)
                }
            }
        }
        if !busy.isEmpty { outcomes += await searchInParallel(busy, request, query: query, timeout: timeout) }
        state.withLock { state in
            for outcome in outcomes where outcome.result != nil { state.searchesByPartition[outcome.partition, default: 0] += 1 }
        }
        var results: [SearchResult] = []
        for outcome in outcomes.sorted(by: { $0.partition < $1.partition }) {
            if let result = outcome.result { results.append(result) } else {
                errors.append(.init(errorType: "BoboExecutionError", message: "partition \(outcome.partition): \(outcome.failure ?? "failed")", errorCode: 500))
            }
        }
        for partition in busy where !outcomes.contains(where: { $0.partition == partition }) {
            errors.append(.init(errorType: "ExecutionTimeout", message: "partition \(partition) did not answer within \(timeout)", errorCode: 500))
        }
        var combined = ResultMerger.combineOnNode(results, request: request)
        combined.errors += errors
        return combined
    }

    /// Searches `partitions`, each on a search thread of its own; those that answer within
    /// `timeout`. A thread still waiting for a partition (an ingest holds it) when the time is up
    /// skips the search once it gets the partition: nobody waits for its result.
    private func searchInParallel(_ partitions: [Int], _ request: SearchRequest, query: QueryNode, timeout: Duration) async -> [PartitionOutcome] {
        let abandoned = CancellationFlag()
        defer { abandoned.set() }
        return await withTaskGroup(of: PartitionOutcome?.self) { group in
            for partition in partitions {
                let slot = indexes[partition]!
                group.addTask {
                    await runOffPoolUnlessCancelled {
                        slot.withIndex { index in abandoned.isSet ? nil : Self.search(index, partition, request, query: query) }
                    } ?? nil
                }
            }
            group.addTask {
                try? await eventLoopSleep(for: timeout)
                return nil
            }
            var outcomes: [PartitionOutcome] = []
            while outcomes.count < partitions.count, let next = await group.next(), let outcome = next { outcomes.append(outcome) }
            group.cancelAll()  // the late partitions' waits end at once
            return outcomes
        }
    }

    /// One partition's search, its failure included.
    private static func search(_ index: PartitionIndex, _ partition: Int, _ request: SearchRequest, query: QueryNode) -> PartitionOutcome {
        do {
            return PartitionOutcome(partition: partition, result: try index.search(request, query: query))
        } catch {
            return PartitionOutcome(partition: partition, failure: "\(error)")
        }
    }

    /// Runs `body` with `partition`'s index, holding its lock (tests read a partition, or stall it).
    func withPartitionIndex<T>(_ partition: Int, _ body: (PartitionIndex) throws -> T) rethrows -> T {
        try indexes[partition]!.withIndex(body)
    }

    /// One partition's part of a search (a struct, not a tuple: see ``SearchBroker/NodeOutcome``).
    struct PartitionOutcome: Sendable {
        var partition: Int
        var result: SearchResult?
        var failure: String?
    }

    /// The source documents of `uids` that this node holds.
    public func documents(uids: [String]) -> [String: String] {
        var found: [String: String] = [:]
        for partition in indexes.values {
            partition.withIndex { index in
                for uid in uids { if let document = index.document(uid: uid) { found[uid] = document.source } }
            }
        }
        return found
    }
}
