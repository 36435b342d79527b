import DemoSupport
import Foundation

/// A node's indexes on disk under `sensei.index.directory`: per partition, its segments (postings
/// and documents, ``SegmentFile``) and the ids of documents deleted or replaced since they were
/// written; for the node, `manifest.json`, the commit point: which segment files make up each
/// partition, how many deleted ids count, and the gateway position they cover. A restarted node
/// reopens its segments without parsing or tokenizing anything and resumes the gateway there.
///
/// ```
/// <directory>/manifest.json                  written last, atomically (temporary file, fsync, rename)
/// <directory>/partition-<n>/segment-<k>.seg   written (fsync, rename) before the manifest names it
/// <directory>/partition-<n>/deleted.log      ids appended (fsync) before the manifest counts them
/// ```
///
/// What the manifest does not name (a segment written by a batch or a merge that did not reach
/// its commit) is deleted when the store opens, and ids past its count are cut off: on kill -9,
/// a node keeps exactly what it acknowledged by advancing its gateway position. A directory of
/// the earlier format (`partition-<n>/documents.jsonl` and `gateway.position`) is read once and
/// written as segments.
public final class PartitionStore: @unchecked Sendable {
    public let directory: String
    let partitions: [Int]
    private let lock = NSLock()
    private var manifest: Manifest

    struct Manifest: Codable, Equatable {
        var position = FileGateway.Position()
        var partitions: [String: PartitionState] = [:]
        /// How documents were spread when they were indexed (`sensei.index.manager.default.maxpartition.id`
        /// + 1 and the sharding strategy): the same documents spread otherwise belong elsewhere.
        var partitionCount: Int?
        var sharding: String?
    }

    struct PartitionState: Codable, Equatable {
        /// Segment file names, by increasing document ids.
        var segments: [String] = []
        /// How many ids of `deleted.log` count.
        var deletedCount = 0
        var nextSegment = 0
    }

    /// - Parameters:
    ///   - layout: how the node spreads documents (`partitionCount`, and the sharding strategy's
    ///     name): an index built another way, or a partition new on this node although the index
    ///     already covers part of the gateway, is refused (it would miss or misplace documents).
    public init(directory: String, partitions: [Int], layout: (partitionCount: Int, sharding: String)? = nil) throws {
        self.directory = directory
        self.partitions = partitions
        for partition in partitions {
            try FileManager.default.createDirectory(atPath: Self.folder(directory, partition), withIntermediateDirectories: true)
        }
        if let data = FileManager.default.contents(atPath: directory + "/manifest.json") {
            do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
                throw SegmentFile.Corrupt(description: "\(directory)/manifest.json is not a manifest: \(error)")
            }
        } else {
            manifest = Manifest()
        }
        if let layout {
            let again = "remove \(directory) to index the gateway again"
            if let count = manifest.partitionCount, count != layout.partitionCount {
                throw SegmentFile.Corrupt(description: "\(directory) was indexed for \(count) partitions, the node is configured for \(layout.partitionCount): \(again)")
            }
            if let sharding = manifest.sharding, sharding != layout.sharding {
                throw SegmentFile.Corrupt(description: "\(directory) was indexed with \(sharding) sharding, the node is configured for \(layout.sharding): \(again)")
            }
            let new = partitions.filter { manifest.partitions[String($0)] == nil }
            if !new.isEmpty && manifest.position.nextLine > 0 && !manifest.partitions.isEmpty {
                throw SegmentFile.Corrupt(description: """
                    partition\(new.count == 1 ? "" : "s") \(new.map(String.init).joined(separator: ", ")) \(new.count == 1 ? "is" : "are") new on this node, \
                    but \(directory) already covers the gateway up to line \(manifest.position.nextLine): \
                    \(new.count == 1 ? "it" : "they") would lack the documents before it; \(again)
                    """)
            }
            (manifest.partitionCount, manifest.sharding) = (layout.partitionCount, layout.sharding)
            // A partition no longer on this node stops being followed: once the store moves on
            // without it, it lacks what came meanwhile, so if it comes back it is new (refused
            // above while the store covers part of the gateway).
            manifest.partitions = manifest.partitions.filter { key, _ in Int(key).map(partitions.contains) ?? false }
        }
        for partition in partitions where manifest.partitions[String(partition)] == nil { manifest.partitions[String(partition)] = PartitionState() }
        try removeUncommitted()
    }

    static func folder(_ directory: String, _ partition: Int) -> String { directory + "/partition-\(partition)" }

    private func folder(_ partition: Int) -> String { Self.folder(directory, partition) }

    /// Deletes segment files the manifest does not name, and cuts deleted ids past its count.
    private func removeUncommitted() throws {
        for partition in partitions {
            let state = manifest.partitions[String(partition)]!
            let names = Set(state.segments)
            for file in (try? FileManager.default.contentsOfDirectory(atPath: folder(partition))) ?? []
            where (file.hasPrefix("segment-") && !names.contains(file)) || file.hasSuffix(".tmp") {
                try FileManager.default.removeItem(atPath: folder(partition) + "/" + file)
            }
            let log = folder(partition) + "/deleted.log"
            if let attributes = try? FileManager.default.attributesOfItem(atPath: log), let size = attributes[.size] as? Int, size > state.deletedCount * 4 {
                guard truncate(log, off_t(state.deletedCount * 4)) == 0 else { throw DurableFile.Failure("truncate \(log) to what the manifest counts") }
            }
        }
    }

    /// The gateway position the store covers (the start for a new store).
    public func position() -> FileGateway.Position { lock.withLock { manifest.position } }

    /// Whether a partition has the earlier format's documents to import.
    func legacyDocuments(partition: Int) -> [String]? {
        guard manifest.partitions[String(partition)]!.segments.isEmpty,
            let data = FileManager.default.contents(atPath: folder(partition) + "/documents.jsonl"), !data.isEmpty
        else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// The earlier format's gateway position (used once, when its documents are imported).
    func legacyPosition() -> FileGateway.Position? {
        guard let data = FileManager.default.contents(atPath: directory + "/gateway.position") else { return nil }
        return try? JSONDecoder().decode(FileGateway.Position.self, from: data)
    }

    /// A partition as committed: its segments (with their documents and lengths) and deleted ids.
    struct Loaded: Sendable {
        var segments: [(segment: Segment, documents: [SearchDocument?], lengths: [[Int32]])]
        var deleted: [Int32]
    }

    /// The partitions as committed, their segment files read (mapped, not copied) on every core,
    /// largest first.
    /// - Parameter schema: the schema the files must have been written with (its columns and
    ///   full-text columns): a file of another schema would be read into the wrong columns.
    /// - Throws: ``SegmentFile/Corrupt`` naming a file that is missing, cannot be read back, was
    ///   written for another schema, or does not follow the partition's previous segment.
    func load(partitions: [Int], schema: SearchSchema) throws -> [Int: Loaded] {
        let states = lock.withLock { partitions.map { (partition: $0, state: manifest.partitions[String($0)]!) } }
        let paths = states.flatMap { entry in entry.state.segments.map { folder(entry.partition) + "/" + $0 } }
        let sizes = paths.map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }
        let largestFirst = paths.indices.sorted { sizes[$0] > sizes[$1] }
        let decoded = Parallel.map(largestFirst.map { paths[$0] }) { path -> Result<(segment: Segment, documents: [SearchDocument?], lengths: [[Int32]]), SegmentFile.Corrupt> in
            let read = WholeFile.withMapped(path) { bytes in Result { () throws(SegmentFile.Corrupt) in try SegmentFile.decode(bytes) } }
            guard let read else { return .failure(SegmentFile.Corrupt(description: "\(path) is missing although the manifest names it")) }
            return read.mapError { SegmentFile.Corrupt(description: "\(path): \($0.description)") }.flatMap { contents in
                let columns = contents.documents.lazy.compactMap { $0?.values.count }.first ?? schema.columns.count
                guard contents.lengths.count == schema.fullTextColumns.count, columns == schema.columns.count else {
                    return .failure(SegmentFile.Corrupt(description: """
                        \(path) was written for \(columns) columns (\(contents.lengths.count) full-text); the schema has \(schema.columns.count) \
                        (\(schema.fullTextColumns.count)): remove the node's index directory to index the gateway again with this schema
                        """))
                }
                return .success(contents)
            }
        }
        var byPath: [String: (segment: Segment, documents: [SearchDocument?], lengths: [[Int32]])] = [:]
        for (position, index) in largestFirst.enumerated() { byPath[paths[index]] = try decoded[position].get() }
        var result: [Int: Loaded] = [:]
        for (partition, state) in states {
            var deleted: [Int32] = []
            if state.deletedCount > 0, let bytes = WholeFile.read(folder(partition) + "/deleted.log") {
                deleted = (0..<min(state.deletedCount, bytes.count / 4)).map { index in
                    bytes.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)) }
                }
            }
            let segments = state.segments.map { byPath[folder(partition) + "/" + $0]! }
            var next: Int32 = 0
            for (name, contents) in zip(state.segments, segments) {
                guard contents.segment.base == next else {
                    throw SegmentFile.Corrupt(description: "\(folder(partition))/\(name) starts at document \(contents.segment.base), not \(next) where the one before it ends")
                }
                next = contents.segment.end
            }
            result[partition] = Loaded(segments: segments, deleted: deleted)
        }
        return result
    }

    /// One partition's changes in a commit: a new segment file's bytes and the ids deleted since the last commit.
    struct Change {
        var partition: Int
        var segment: [UInt8]?
        var deleted: [Int32] = []
    }

    /// Writes the changes (segments, then deleted ids, each synced), then the manifest with
    /// `position`: the commit point of a batch.
    func commit(_ changes: [Change], position: FileGateway.Position) throws {
        try lock.withLock {
            var next = manifest
            for change in changes {
                var state = next.partitions[String(change.partition)]!
                if let bytes = change.segment {
                    let name = "segment-\(state.nextSegment).seg"
                    state.nextSegment += 1
                    try DurableFile.replace(folder(change.partition) + "/" + name, with: bytes)
                    state.segments.append(name)
                }
                if !change.deleted.isEmpty {
                    let bytes = change.deleted.flatMap { id in withUnsafeBytes(of: id.littleEndian) { Array($0) } }
                    try DurableFile.append(bytes, to: folder(change.partition) + "/deleted.log")
                    state.deletedCount += change.deleted.count
                }
                next.partitions[String(change.partition)] = state
            }
            next.position = position
            try writeManifest(next)
            manifest = next
        }
    }

    /// Replaces the adjacent segment files at `replaced` (indices in the partition's list) by one
    /// merged segment; the old files are deleted once the manifest no longer names them.
    func commitMerge(partition: Int, replacing replaced: Range<Int>, with bytes: [UInt8]) throws {
        try lock.withLock {
            var next = manifest
            var state = next.partitions[String(partition)]!
            let name = "segment-\(state.nextSegment).seg"
            state.nextSegment += 1
            try DurableFile.replace(folder(partition) + "/" + name, with: bytes)
            let old = Array(state.segments[replaced])
            state.segments.replaceSubrange(replaced, with: [name])
            next.partitions[String(partition)] = state
            try writeManifest(next)
            manifest = next
            for file in old { try? FileManager.default.removeItem(atPath: folder(partition) + "/" + file) }
        }
    }

    /// The names of a partition's segment files, in order (for tests and merges).
    func segmentFiles(partition: Int) -> [String] { lock.withLock { manifest.partitions[String(partition)]!.segments } }

    /// Forgets the earlier format's files once their documents are committed as segments.
    func removeLegacyFiles() {
        for partition in partitions { try? FileManager.default.removeItem(atPath: folder(partition) + "/documents.jsonl") }
        try? FileManager.default.removeItem(atPath: directory + "/gateway.position")
    }

    private func writeManifest(_ manifest: Manifest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try DurableFile.replace(directory + "/manifest.json", with: try encoder.encode(manifest))
    }
}
