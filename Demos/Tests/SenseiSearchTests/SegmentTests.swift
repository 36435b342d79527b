import Foundation
import Logging
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

/// Segments: a partition sealed into many segments, merged, written and read back answers like
/// one index built in one go; segment files that are cut or altered are refused; the store keeps
/// exactly what its manifest committed.
@Suite struct SegmentTests {
    /// Random documents (with replacements of earlier uids and deletions), sealed at random
    /// points, merged now and then: every query answers as one index that never sealed.
    @Test func sealedAndMergedSegmentsAnswerLikeOneIndex() throws {
        var generator = SeededRandomNumberGenerator(seed: 31)
        let corpus = Corpus(count: 700, using: &generator)
        for round in 0..<12 {
            let segmented = PartitionIndex(schema: Corpus.schema)
            let reference = PartitionIndex(schema: Corpus.schema)
            for car in corpus.cars.shuffled(using: &generator).prefix(Int.random(in: 50...700, using: &generator)) {
                var car = car
                if Int.random(in: 0..<6, using: &generator) == 0 { car.id = Int.random(in: 0..<40, using: &generator) }  // a replacement
                let document = try SearchDocument(jsonLine: car.json, schema: Corpus.schema)
                segmented.add(document)
                reference.add(document)
                if Int.random(in: 0..<30, using: &generator) == 0 {
                    let uid = String(Int.random(in: 0..<700, using: &generator))
                    segmented.delete(uid: uid)
                    reference.delete(uid: uid)
                }
                if Int.random(in: 0..<25, using: &generator) == 0 { segmented.seal() }
                if Int.random(in: 0..<40, using: &generator) == 0, let old = segmented.mergeCandidates(policy: MergePolicy(factor: 3, maxSegments: 2)) {
                    let live = segmented.liveSnapshot
                    #expect(segmented.replace(old, with: Segment.merged(old, isLive: { live[Int($0)] })))
                }
            }
            segmented.seal()
            // And once more through the file format: every segment written and read back.
            let reopened = PartitionIndex(
                schema: Corpus.schema,
                segments: try segmented.segments.map { segment in
                    let (documents, lengths) = segmented.contents(of: segment)
                    return try SegmentFile.decode(SegmentFile.encode(segment, documents: documents, lengths: lengths, schemaColumns: Corpus.schema.columns.count))
                }, deleted: [])
            for query in ["", "turbo", "leather AND seats", "quiet OR mint", "\"leather seats\"", "roomy NOT manual"] {
                var request = SearchRequest()
                request.query = query
                request.size = 1000
                request.facets = ["color": .init(max: 100)]
                // Scores can differ: a term's document frequency counts replaced and deleted
                // documents until a merge drops their postings (as in Lucene). What matches, the
                // counts and the facets do not.
                func essentials(_ result: SearchResult) -> (Int, Set<String>, [String: [SearchResult.FacetCount]]) {
                    (result.numhits, Set(result.hits.map(\.uid)), result.facets.mapValues { $0.sorted { $0.value < $1.value } })
                }
                let expected = essentials(try reference.search(request))
                #expect(essentials(try segmented.search(request)) == expected, "round \(round), \(query)")
                #expect(essentials(try reopened.search(request)) == expected, "round \(round), \(query), reopened")
            }
            #expect(segmented.liveCount == reference.liveCount && reopened.liveCount == reference.liveCount)
        }
    }

    /// Without replacements or deletions, segments change nothing at all: same hits, same order, same scores.
    @Test func withoutDeletionsSegmentsGiveTheSameScores() throws {
        var generator = SeededRandomNumberGenerator(seed: 77)
        let corpus = Corpus(count: 500, using: &generator)
        let segmented = PartitionIndex(schema: Corpus.schema)
        for (index, car) in corpus.cars.enumerated() {
            segmented.add(try SearchDocument(jsonLine: car.json, schema: Corpus.schema))
            if index % 37 == 0 { segmented.seal() }
            if index % 111 == 0, let old = segmented.mergeCandidates(policy: MergePolicy(factor: 2, maxSegments: 3)) {
                let live = segmented.liveSnapshot
                segmented.replace(old, with: Segment.merged(old, isLive: { live[Int($0)] }))
            }
        }
        let reference = try corpus.index()
        for query in ["turbo", "leather AND seats", "quiet OR mint", "\"leather seats\"", "roomy NOT manual"] {
            var request = SearchRequest()
            request.query = query
            request.size = 30
            #expect(try segmented.search(request) == reference.search(request), "\(query)")
        }
    }

    /// The merge policy over random runs of batches (large, small, single documents), merging
    /// whatever it picks until it picks nothing: it always picks adjacent segments that exist,
    /// never leaves more than `maxSegments` or `factor` adjacent segments of one level, and without
    /// deletions rewrites each document at most once per level.
    @Test func theMergePolicyBoundsSegmentsAndRewrites() {
        var generator = SeededRandomNumberGenerator(seed: 58)
        for round in 0..<400 {
            let policy = MergePolicy(factor: Int.random(in: 2...12, using: &generator), maxSegments: Int.random(in: 1...60, using: &generator))
            let deletions = Bool.random(using: &generator)
            let largestBatch = [1, 10, 5_000].randomElement(using: &generator)!
            var counts: [Int] = []
            var (flushed, rewritten, fellBack) = (0, 0, false)
            for _ in 0..<Int.random(in: 1...300, using: &generator) {
                let batch = Int.random(in: 1...largestBatch, using: &generator)
                counts.append(batch)
                flushed += batch
                while let run = policy.nextMerge(counts: counts) {
                    #expect(run.count >= 2 && run.upperBound <= counts.count, "round \(round)")
                    fellBack = fellBack || run.count < policy.factor || Set(counts[run].map(policy.level)).count > 1
                    var merged = counts[run].reduce(0, +)
                    rewritten += merged
                    if deletions { merged -= Int.random(in: 0...(merged / 3), using: &generator) }
                    counts.replaceSubrange(run, with: [max(merged, 1)])
                }
                #expect(counts.count <= policy.maxSegments, "round \(round)")
                var start = 0
                while start < counts.count {
                    var end = start + 1
                    while end < counts.count && policy.level(counts[end]) == policy.level(counts[start]) { end += 1 }
                    #expect(end - start < policy.factor, "round \(round)")
                    start = end
                }
            }
            if !deletions && !fellBack {
                #expect(rewritten <= flushed * (policy.level(flushed) + 1), "round \(round): \(rewritten) rewritten for \(flushed)")
            }
        }
    }

    @Test func aMergeDropsThePostingsOfGoneDocuments() throws {
        let index = PartitionIndex(schema: Corpus.schema)
        for id in 0..<4 {
            index.add(try SearchDocument(jsonLine: #"{"id": \#(id), "contents": "alpha beta"}"#, schema: Corpus.schema))
            index.seal()
        }
        index.delete(uid: "1")
        index.add(try SearchDocument(jsonLine: #"{"id": 2, "contents": "gamma"}"#, schema: Corpus.schema))
        index.seal()
        let old = try #require(index.mergeCandidates(policy: MergePolicy(factor: 5)))
        let live = index.liveSnapshot
        let merged = Segment.merged(old, isLive: { live[Int($0)] })
        #expect(merged.base == 0 && merged.count == 5)
        #expect(merged.documentFrequency(slot: 0, term: "alpha") == 2, "ids 1 (deleted) and 2 (replaced) are gone")
        #expect(index.replace(old, with: merged))
        #expect(!index.replace(old, with: merged), "the old segments are no longer there")
        var request = SearchRequest()
        request.query = "alpha OR gamma"
        #expect(try index.search(request).hits.map(\.uid).sorted() == ["0", "2", "3"])
    }

    @Test func aCutOrAlteredSegmentFileIsRefused() throws {
        var generator = SeededRandomNumberGenerator(seed: 4)
        let index = try Corpus(count: 50, using: &generator).index()
        let segment = try #require(index.seal())
        let (documents, lengths) = index.contents(of: segment)
        let bytes = SegmentFile.encode(segment, documents: documents, lengths: lengths, schemaColumns: Corpus.schema.columns.count)
        #expect(try SegmentFile.decode(bytes).documents == documents)
        #expect(SegmentFile.encodedSize(segment, documents: documents, schemaColumns: Corpus.schema.columns.count) == bytes.count)
        for cut in [0, 10, bytes.count / 2, bytes.count - 1] {
            #expect(throws: SegmentFile.Corrupt.self) { _ = try SegmentFile.decode(Array(bytes.prefix(cut))) }
        }
        for _ in 0..<50 {
            var altered = bytes
            altered[Int.random(in: 0..<altered.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            #expect(throws: SegmentFile.Corrupt.self) { _ = try SegmentFile.decode(altered) }
        }
    }

    /// What a node writes and did not commit (a segment, deleted ids) is gone after a restart, as
    /// after kill -9 between the writes and the manifest; what it committed is all there.
    @Test func theStoreKeepsExactlyWhatTheManifestCommitted() throws {
        let directory = NSTemporaryDirectory() + "search-store-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SeededRandomNumberGenerator(seed: 12)
        let corpus = Corpus(count: 3000, using: &generator)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try (corpus.cars.map(\.json).joined(separator: "\n") + "\n").write(toFile: directory + "/gateway.json", atomically: true, encoding: .utf8)
        let gateway = FileGateway(path: directory + "/gateway.json")
        func open() throws -> NodeIndex {
            try NodeIndex(
                schema: Corpus.schema, partitions: [0], partitionCount: 1, sharding: .uidModulo, directory: directory + "/index", logger: Logger(label: "test"))
        }
        let node = try open()
        // 30 batches of 100: more segments than the merge factor, so merges happened.
        while try node.ingestNextBatch(from: gateway, maxLines: 100) > 0 {}
        node.finishMerges()
        #expect(node.store.segmentFiles(partition: 0).count < MergePolicy().factor)
        var request = SearchRequest()
        request.query = "turbo OR quiet"
        request.size = 50
        let before = try node.withPartitionIndex(0) { try $0.search(request) }
        // A batch written but not committed: a segment file and deleted ids beyond the manifest.
        let folder = directory + "/index/partition-0"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/segment-999.seg"))
        if !FileManager.default.fileExists(atPath: folder + "/deleted.log") { _ = FileManager.default.createFile(atPath: folder + "/deleted.log", contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/deleted.log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0, 0, 0]))  // "document 0 is gone", never committed
        try handle.close()
        let reopened = try open()
        #expect(!FileManager.default.fileExists(atPath: folder + "/segment-999.seg"))
        #expect(reopened.documentCount == corpus.cars.count && reopened.gatewayPosition == node.gatewayPosition)
        #expect(try reopened.withPartitionIndex(0) { try $0.search(request) } == before)
        #expect(reopened.documents(uids: ["0"]).count == 1)
    }

    /// A store of the earlier format in `directory`: `documents` random cars as JSON lines in
    /// partition 0, and the gateway position (JSON) when given.
    static func writeEarlierFormatStore(at directory: String, documents: Int, seed: UInt64, position: String? = nil) throws {
        var generator = SeededRandomNumberGenerator(seed: seed)
        let corpus = Corpus(count: documents, using: &generator)
        try FileManager.default.createDirectory(atPath: directory + "/partition-0", withIntermediateDirectories: true)
        try (corpus.cars.map(\.json).joined(separator: "\n") + "\n").write(toFile: directory + "/partition-0/documents.jsonl", atomically: true, encoding: .utf8)
        try position?.write(toFile: directory + "/gateway.position", atomically: true, encoding: .utf8)
    }

    /// A store of the earlier format (documents as JSON lines and gateway.position) is indexed
    /// once and written as segments; the next start reads the segments.
    @Test func theEarlierStoreFormatIsImportedOnce() throws {
        let directory = NSTemporaryDirectory() + "search-legacy-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.writeEarlierFormatStore(at: directory, documents: 200, seed: 3, position: #"{"nextLine": 200, "byteOffset": 12345}"#)
        func open() throws -> NodeIndex {
            try NodeIndex(schema: Corpus.schema, partitions: [0], partitionCount: 1, sharding: .uidModulo, directory: directory, logger: Logger(label: "test"))
        }
        let first = try open()
        #expect(first.documentCount == 200 && first.gatewayPosition == FileGateway.Position(nextLine: 200, byteOffset: 12345))
        #expect(!FileManager.default.fileExists(atPath: directory + "/partition-0/documents.jsonl"))
        #expect(first.store.segmentFiles(partition: 0).count == 1)
        let second = try open()
        #expect(second.documentCount == 200 && second.gatewayPosition == first.gatewayPosition)
    }
    /// An index written with another schema (a column added since) is refused at start with a
    /// reason naming the file and what to do, instead of being read into the wrong columns (or
    /// stopping the process).
    @Test func anIndexOfAnotherSchemaIsRefusedAtStart() throws {
        let directory = NSTemporaryDirectory() + "search-schema-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.writeEarlierFormatStore(at: directory, documents: 50, seed: 4)
        _ = try NodeIndex(schema: Corpus.schema, partitions: [0], partitionCount: 1, sharding: .uidModulo, directory: directory, logger: Logger(label: "test"))
        let wider = try SearchSchema(json: Data(Corpus.schemaJSON.replacingOccurrences(
            of: #"{"name": "category", "type": "string"},"#, with: #"{"name": "category", "type": "string"}, {"name": "maker", "type": "string"},"#).utf8))
        #expect(wider.columns.count == Corpus.schema.columns.count + 1)
        #expect {
            _ = try NodeIndex(schema: wider, partitions: [0], partitionCount: 1, sharding: .uidModulo, directory: directory, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("partition-0/") && "\(error)".contains("the schema has \(wider.columns.count)") && "\(error)".contains("index the gateway again")
        }
    }
    /// An index is tied to how the node spreads documents: opened for another partition count or
    /// strategy, or with a partition new on the node although the index already covers part of
    /// the gateway (that partition would lack the earlier documents), it is refused with a reason.
    @Test func anIndexIsRefusedForAnotherPartitionLayout() throws {
        let directory = NSTemporaryDirectory() + "search-layout-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.writeEarlierFormatStore(at: directory, documents: 40, seed: 5, position: #"{"nextLine": 40, "byteOffset": 4000}"#)
        func open(_ partitions: [Int], count: Int, sharding: ShardingStrategy = .uidModulo) throws -> NodeIndex {
            try NodeIndex(schema: Corpus.schema, partitions: partitions, partitionCount: count, sharding: sharding, directory: directory, logger: Logger(label: "test"))
        }
        _ = try open([0], count: 2)
        _ = try open([0], count: 2)  // the same layout opens again
        #expect { _ = try open([0], count: 3) } throws: { "\($0)".contains("indexed for 2 partitions") }
        #expect { _ = try open([0], count: 2, sharding: .uidHash) } throws: { "\($0)".contains("sharding") }
        #expect { _ = try open([0, 1], count: 2) } throws: { "\($0)".contains("partition 1 is new on this node") && "\($0)".contains("line 40") }
    }

    /// A partition taken off the node while the store moves on, then given back, lacks what was
    /// indexed meanwhile: it is new again, and refused. Given back before the store moved, it is
    /// still whole and opens.
    @Test func aPartitionGivenBackAfterTheStoreMovedOnIsRefused() throws {
        let directory = NSTemporaryDirectory() + "search-removed-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let layout = (partitionCount: 3, sharding: "uidModulo")
        let first = try PartitionStore(directory: directory, partitions: [0, 1, 2], layout: layout)
        try first.commit([], position: FileGateway.Position(nextLine: 10, byteOffset: 1_000))
        _ = try PartitionStore(directory: directory, partitions: [0, 1], layout: layout)
        _ = try PartitionStore(directory: directory, partitions: [0, 1, 2], layout: layout)  // nothing moved meanwhile
        let without = try PartitionStore(directory: directory, partitions: [0, 1], layout: layout)
        try without.commit([], position: FileGateway.Position(nextLine: 20, byteOffset: 2_000))
        #expect { _ = try PartitionStore(directory: directory, partitions: [0, 1, 2], layout: layout) } throws: {
            "\($0)".contains("partition 2 is new on this node") && "\($0)".contains("line 20")
        }
    }
}
