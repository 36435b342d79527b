import DemoTestSupport
import Foundation
import Logging
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

/// Ingestion from the file gateway into a node's partitions on disk, and a restart.
@Suite struct NodeIndexTests {
    func drain(_ gateway: FileGateway, into node: NodeIndex, batch: Int = 100) throws -> Int {
        var read = 0
        while case let count = try node.ingestNextBatch(from: gateway, maxLines: batch), count > 0 { read += count }
        return read
    }

    @Test func twoNodesShareAPartitionAndARestartReadsNothingTwice() async throws {
        let directory = try makeTemporaryDirectory("search-node")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SeededRandomNumberGenerator(seed: 5)
        let corpus = Corpus(count: 600, using: &generator)
        var text = corpus.cars.prefix(300).map(\.json).joined(separator: "\n") + "\n"
        text += "this line is not JSON\n{\"color\": \"red\"}\n\n"
        text += corpus.cars.dropFirst(300).map(\.json).joined(separator: "\n") + "\n"
        try text.write(toFile: directory + "/gateway.json", atomically: true, encoding: .utf8)
        let gateway = FileGateway(path: directory + "/gateway.json")
        let logger = Logger(label: "test")
        func open(_ name: String, _ partitions: [Int]) throws -> NodeIndex {
            try NodeIndex(schema: Corpus.schema, partitions: partitions, partitionCount: 3, sharding: .uidModulo, directory: directory + "/" + name, logger: logger)
        }
        let first = try open("node1", [0, 1])
        let second = try open("node2", [1, 2])
        #expect(try drain(gateway, into: first) == 603)
        #expect(try drain(gateway, into: second) == 603)
        #expect(first.report.malformed == 2, "the non-JSON line and the line without a uid")
        #expect(first.documentCount == corpus.cars.filter { $0.id % 3 != 2 }.count)
        #expect(second.documentCount == corpus.cars.filter { $0.id % 3 != 0 }.count)
        // Partition 1 asked of one node, partitions 0 and 2 of the others: every document once.
        var request = SearchRequest()
        request.partitions = [0, 1]
        let fromFirst = try await first.search(request)
        request.partitions = [2]
        let fromSecond = try await second.search(request)
        #expect(ResultMerger.merge([fromFirst, fromSecond], request: SearchRequest()).numhits == 600)
        request.partitions = [2]
        #expect(try await first.search(request).errors.map(\.errorType) == ["PartitionCallError"])

        // A restart loads the partitions from disk and reads no gateway line again.
        let reopened = try open("node1", [0, 1])
        #expect(reopened.documentCount == first.documentCount)
        #expect(try gateway.read(from: reopened.gatewayPosition).lines.isEmpty)
        request.partitions = nil
        request.query = "turbo"
        #expect(try await reopened.search(request) == first.search(request))
        // Lines appended later are read, and only those.
        let extra = #"{"id": 1000, "color": "red", "year": 2001, "contents": "brand new turbo"}"# + "\n"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: gateway.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((extra + #"{"id": 1001, "col"#).utf8))  // the second line is still being written
        try handle.close()
        #expect(try drain(gateway, into: reopened) == 1)
        #expect(reopened.documentCount == first.documentCount + 1)
        #expect(reopened.documents(uids: ["1000", "999999"]) == ["1000": extra.trimmingCharacters(in: .newlines)])
    }

    /// sensei.node.partition.timeout: a partition that has not answered in time is left out with
    /// an ExecutionTimeout error, and the node does not wait for it (here it is stalled until the
    /// search has returned: waiting for it would hang the test).
    @Test(.timeLimit(.minutes(1))) func aLatePartitionIsLeftOutAndNotWaitedFor() async throws {
        let directory = try makeTemporaryDirectory("search-node")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SeededRandomNumberGenerator(seed: 8)
        let corpus = Corpus(count: 900, using: &generator)
        try (corpus.cars.map(\.json).joined(separator: "\n") + "\n").write(toFile: directory + "/gateway.json", atomically: true, encoding: .utf8)
        let node = try NodeIndex(
            schema: Corpus.schema, partitions: [0, 1, 2], partitionCount: 3, sharding: .uidModulo, directory: directory + "/node", logger: Logger(label: "test"))
        _ = try drain(FileGateway(path: directory + "/gateway.json"), into: node, batch: 1000)
        let patient = try await node.search(SearchRequest(), timeout: .seconds(60))
        #expect(patient.errors.isEmpty)
        #expect(patient.numhits == 900)
        // Partition 1 is held by another thread until the search has come back.
        var release = Self.hold(partition: 1, of: node)
        let hurried = try await node.search(SearchRequest(), timeout: .milliseconds(200))
        release()
        #expect(hurried.errors.map(\.errorType) == ["ExecutionTimeout"])
        #expect(hurried.errors.first?.message.contains("partition 1") == true)
        #expect(hurried.numhits == corpus.cars.filter { $0.id % 3 != 1 }.count)

        // One partition alone is searched on the calling task when it is free, and under the
        // timeout, like several, while something holds it.
        var one = SearchRequest()
        one.partitions = [1]
        let alone = try await node.search(one, timeout: .seconds(60))
        #expect(alone.errors.isEmpty)
        #expect(alone.numhits == corpus.cars.filter { $0.id % 3 == 1 }.count)
        release = Self.hold(partition: 1, of: node)
        let stalled = try await node.search(one, timeout: .milliseconds(200))
        release()
        #expect(stalled.errors.map(\.errorType) == ["ExecutionTimeout"])
        #expect(stalled.numhits == 0)
    }

    /// Holds `partition` of `node` on another thread (as an ingest or a merge would) until the
    /// returned closure is called.
    static func hold(partition: Int, of node: NodeIndex) -> @Sendable () -> Void {
        let (held, release) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        Thread.detachNewThread {
            node.withPartitionIndex(partition) { _ in
                held.signal()
                release.wait()
            }
        }
        held.wait()
        return { release.signal() }
    }

    @Test func gatewayLinesAreNumberedAcrossReads() throws {
        let directory = try makeTemporaryDirectory("search-node")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "a\r\nb\n\nc\n".write(toFile: directory + "/g", atomically: true, encoding: .utf8)
        let gateway = FileGateway(path: directory + "/g")
        let (first, next) = try gateway.read(from: .init(), maxLines: 2)
        #expect(first.map(\.text) == ["a", "b"])
        let (rest, end) = try gateway.read(from: next)
        #expect(rest.map(\.number) == [2, 3])
        #expect(rest.map(\.text) == ["", "c"])
        #expect(end.byteOffset == 8)
        #expect(try FileGateway(path: directory + "/missing").read(from: .init()).lines.isEmpty)
    }
}
