import DemoTestSupport
import DemoSupport
import Coordination
import Foundation
import NIOCore
import Testing
import ZooKeeperTesting

@testable import SequinsKV

@Suite struct PartitionFileTests {
    /// Writes `records` in batches of random sizes and finishes the file.
    func write(_ records: [([UInt8], [UInt8])], to path: String, using generator: inout SeededRandomNumberGenerator) throws -> PartitionFile {
        let writer = try PartitionFileWriter(path: path)
        var batch: [UInt8] = []
        var inBatch = 0
        for (key, value) in records {
            key.withUnsafeBytes { k in value.withUnsafeBytes { v in PartitionFile.appendRecord(key: k, value: v, to: &batch) } }
            inBatch += 1
            if Int.random(in: 0..<8, using: &generator) == 0 {
                try writer.append(batch, count: inBatch)
                batch.removeAll()
                inBatch = 0
            }
        }
        try writer.append(batch, count: inBatch)
        return try writer.finish()
    }

    /// Random partitions (empty ones, tiny keys that collide often, repeated keys, a value larger
    /// than the writer's read-back buffer): every key is found with its last value, in the file as
    /// written and mapped again after a reopen, and nothing else is; every page the lookups read
    /// matched its checksum, and so does every other one.
    @Test func findsEveryKeyWithItsLastValueAndNothingElse() throws {
        let directory = try makeTemporaryDirectory("kv-partition")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SeededRandomNumberGenerator(seed: 0x4007b672)
        for round in 0..<60 {
            var expected: [[UInt8]: [UInt8]] = [:]
            var records: [([UInt8], [UInt8])] = []
            for _ in 0..<Int.random(in: 0...3000, using: &generator) {
                let key = (0..<Int.random(in: 0...12, using: &generator)).map { _ in UInt8.random(in: 0...3, using: &generator) }
                let value = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                expected[key] = value
                records.append((key, value))
            }
            if round == 7 {
                let large = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                expected[Array("large".utf8)] = large
                records.append((Array("large".utf8), large))
            }
            let path = directory + "/partition-\(round)"
            let written = try write(records, to: path, using: &generator)
            let reopened = try PartitionFile(path: path)
            #expect(reopened.checkedPageCount == 0, "opening reads no page")
            #expect(written.checkedPageCount == written.pageCount, "a file just written was checked as it was read back")
            for file in [written, reopened] {
                #expect(file.count == expected.count)
                for (key, value) in expected {
                    #expect(try key.withUnsafeBytes { try file.withValue(for: $0) { Array($0) } } == value)
                    let buffer = try key.withUnsafeBytes { try file.value(for: $0, allocator: ByteBufferAllocator()) }
                    #expect(buffer.map { Array($0.readableBytesView) } == value)
                }
                for absent: [UInt8] in [[9, 9, 9], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], Array("larg".utf8)] {
                    #expect(try absent.withUnsafeBytes { try file.withValue(for: $0) { _ in true } } == nil)
                }
                try file.checkAllPages()
                #expect(file.checkedPageCount == file.pageCount)
            }
        }
    }

    /// Readers append from several threads at once: nothing is lost or interleaved.
    /// A file that starts with a long run of one partition but holds others later is read whole:
    /// every key of a kept partition is there, also after a run of another partition longer than
    /// the pre-sharded skip threshold (sequins gives up the assumption at the first other partition).
    @Test func aFileWithRunsOfSeveralPartitionsIsReadWhole() async throws {
        let directory = try makeTemporaryDirectory("kv-presharded")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var zero: [String] = []
        var other: [String] = []  // partition 1
        var index = 0
        while zero.count < 200 || other.count < VersionBuilder.preShardedSkipThreshold + 100 {
            let key = "key-\(index)"
            index += 1
            let location = KeyPartition(key: Array(key.utf8), partitionCount: 4)
            if location.partition == 0 && location.alternate == 0 { zero.append(key) } else if location.partition == 1 && location.alternate == 1 { other.append(key) }
        }
        // Partition 0 (kept), then more of partition 1 than the threshold (skipped), then partition 0 again.
        let order = Array(zero[..<100]) + Array(other.prefix(VersionBuilder.preShardedSkipThreshold + 100)) + Array(zero[100..<200])
        let source = directory + "/part-00000"
        let writer = try SequenceFileWriter(path: source, compression: .none)
        for key in order { try writer.append(key: Array(key.utf8), value: Array("v-\(key)".utf8)) }
        try writer.finish()
        let built = try await VersionBuilder(files: [source], partitionCount: 4, selected: [0]).build(into: directory + "/built")
        let partition = try #require(built[0])
        for key in zero[..<200] {
            let value = try Array(key.utf8).withUnsafeBytes { try partition.value(for: $0, allocator: ByteBufferAllocator()) }
            #expect(value.map { String(buffer: $0) } == "v-\(key)", "\(key)")
        }
    }

    @Test func concurrentAppendsKeepEveryRecord() async throws {
        let directory = try makeTemporaryDirectory("kv-partition")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = try PartitionFileWriter(path: directory + "/partition")
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    for batchIndex in 0..<50 {
                        var batch: [UInt8] = []
                        for record in 0..<100 {
                            let key = Array("t\(thread)-b\(batchIndex)-r\(record)".utf8)
                            key.withUnsafeBytes { PartitionFile.appendRecord(key: $0, value: $0, to: &batch) }
                        }
                        try? writer.append(batch, count: 100)
                    }
                }
            }
        }
        let file = try writer.finish()
        #expect(file.count == 4 * 50 * 100)
        for key in ["t0-b0-r0", "t3-b49-r99", "t2-b17-r42"].map({ Array($0.utf8) }) {
            #expect(try key.withUnsafeBytes { try file.withValue(for: $0) { Array($0) } } == key)
        }
    }

    /// A partition file that lost its end, whose header or page checksums were changed, or that is
    /// not a partition file at all is refused when opened, with an error naming the file and what
    /// is wrong.
    @Test func truncatedCorruptOrForeignFilesAreRefusedByName() throws {
        let directory = try makeTemporaryDirectory("kv-partition")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SeededRandomNumberGenerator(seed: 0x51ce)
        let records = (0..<2000).map { (Array("key-\($0)".utf8), Array(repeating: UInt8($0 % 251), count: 100)) }
        let original = directory + "/original"
        let file = try write(records, to: original, using: &generator)
        let bytes = try #require(WholeFile.read(original))
        #expect(bytes.count == file.size)
        func refusal(_ damaged: [UInt8]) throws -> String? {
            let path = directory + "/damaged"
            try WholeFile.write(damaged, to: path)
            do {
                _ = try PartitionFile(path: path)
                return nil
            } catch {
                #expect(error.description.contains(path), "the error names the file: \(error)")
                return error.description
            }
        }
        for cut in [1, 7, 8, bytes.count / 2, bytes.count - 64, bytes.count - 10] {
            let reason = try refusal(Array(bytes.dropLast(cut)))
            #expect(reason?.contains("truncated") == true, "cut \(cut): \(reason ?? "accepted")")
        }
        // One flipped bit in the header or in the page checksums (after the table).
        let pageChecksumBytes = PartitionFile.pageCount(checkedEnd: bytes.count) * 8
        for _ in 0..<100 {
            var damaged = bytes
            let position =
                Bool.random(using: &generator)
                ? Int.random(in: 0..<PartitionFile.headerSize, using: &generator)
                : Int.random(in: (bytes.count - pageChecksumBytes)..<bytes.count, using: &generator)
            damaged[position] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
            let reason = try refusal(damaged)
            #expect(reason?.contains("corrupt") == true || reason?.contains("KVP4") == true, "a flipped bit at \(position): \(reason ?? "accepted")")
        }
        #expect(try refusal(bytes + [0])?.contains("corrupt") == true)
        #expect(try refusal(Array("KVP3\u{0}an earlier format".utf8))?.contains("KVP4") == true)
        #expect(try refusal([])?.contains("truncated") == true)
    }

    /// A bit flipped anywhere in the records or the table is never served: the file opens, each
    /// lookup answers the key's true value or absence or throws a ``PartitionDamage`` naming the
    /// file and the page, a lookup whose pages are intact still answers, and checking every page
    /// finds the damage.
    @Test func aDamagedPageIsNeverServed() throws {
        let directory = try makeTemporaryDirectory("kv-partition")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SeededRandomNumberGenerator(seed: 0xda3a9e)
        let records = (0..<3000).map { (Array("key-\($0)".utf8), (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        let original = directory + "/original"
        _ = try write(records, to: original, using: &generator)
        let bytes = try #require(WholeFile.read(original))
        let checkedEnd = bytes.count - PartitionFile.pageCount(checkedEnd: bytes.count) * 8
        #expect(PartitionFile.pageCount(checkedEnd: checkedEnd) * 8 == bytes.count - checkedEnd)
        let absent = (0..<50).map { Array("absent-\($0)".utf8) }
        var refused = 0
        for round in 0..<40 {
            var damaged = bytes
            let position = Int.random(in: PartitionFile.headerSize..<checkedEnd, using: &generator)
            damaged[position] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
            let damagedPage = position / PartitionFile.pageSize
            let path = directory + "/damaged-\(round)"
            try WholeFile.write(damaged, to: path)
            let reopened = try PartitionFile(path: path)
            var answered = 0
            for (key, value) in records.map({ ($0.0, Optional($0.1)) }) + absent.map({ ($0, nil) }) {
                do {
                    let found = try key.withUnsafeBytes { try reopened.withValue(for: $0) { Array($0) } }
                    #expect(found == value, "round \(round): key \(String(decoding: key, as: UTF8.self)) answered wrong after a flip at \(position)")
                    answered += 1
                } catch let error as PartitionDamage {
                    #expect(error.path == path && error.page == damagedPage && error.bytes.contains(position))
                    #expect(error.description.contains(path) && error.description.contains("page \(damagedPage)"))
                    refused += 1
                } catch {
                    Issue.record("round \(round): \(error)")
                }
            }
            #expect(answered > 0)
            #expect(throws: PartitionDamage.self) { try reopened.checkAllPages() }
            try? FileManager.default.removeItem(atPath: path)
        }
        #expect(refused > 0, "most flips land in a record some lookup reads")
    }

    /// The checksum is the same whatever the pieces it is fed in, and changes with any bit.
    @Test func theChecksumIsIndependentOfHowTheStreamIsCut() {
        var generator = SeededRandomNumberGenerator(seed: 0xc4ec)
        for _ in 0..<300 {
            let bytes = (0..<Int.random(in: 0...400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let whole = bytes.withUnsafeBytes { FileChecksum.of($0) }
            var pieces = FileChecksum()
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 0...70, using: &generator))
                bytes.withUnsafeBytes { pieces.update(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
                start = end
            }
            #expect(pieces.value == whole)
            if !bytes.isEmpty {
                var flipped = bytes
                flipped[Int.random(in: 0..<bytes.count, using: &generator)] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
                #expect(flipped.withUnsafeBytes { FileChecksum.of($0) } != whole)
            }
            #expect((bytes + [0]).withUnsafeBytes { FileChecksum.of($0) } != whole, "a longer stream differs")
        }
    }
}

@Suite struct SmallPiecesTests {
    @Test func lastModifiedIsAnIMFFixdate() {
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 0.999)) == "Thu, 01 Jan 1970 00:00:00 GMT")
        // Random instants agree with Foundation's formatter.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        for _ in 0..<500 {
            let date = Date(timeIntervalSince1970: Double(Int.random(in: 0...4_102_444_800)))
            #expect(HTTPDate.format(date) == formatter.string(from: date))
        }
    }

    @Test func requestTargetsAreTakenApartAsSequinsRoutesThem() {
        #expect(RequestTarget("/").route == .clusterStatus)
        #expect(RequestTarget("/?proxy=status").proxy == "status")
        #expect(RequestTarget("/healthz").route == .health)
        #expect(RequestTarget("//key").route == .noDatabase)
        #expect(RequestTarget("/db").route == .databaseStatus("db"))
        #expect(RequestTarget("/db/").route == .databaseStatus("db"))
        #expect(RequestTarget("/d%62/").route == .databaseStatus("db"))
        let key = RequestTarget("/db/a%2Fb/c?x=1&proxy=v7")
        #expect(key.route == .key && key.database == "db" && key.key == Array("a/b/c".utf8))
        #expect(key.path == "/db/a%2Fb/c" && key.proxy == "v7")
        // An empty proxy parameter is no proxy, as Go's Query().Get("proxy") != "" in sequins.
        #expect(RequestTarget("/db/k?proxy").proxy == nil)
        #expect(RequestTarget("/db/k?proxy=").proxy == nil)
        #expect(RequestTarget("/db/k?proxy=&proxy=v1").proxy == nil, "the first value decides")
        #expect(RequestTarget("/db/k?proxyx=1").proxy == nil)
    }

    @Test func percentDecodingKeepsRawBytes() {
        #expect(PercentDecoding.decode("%00%00%00%2A") == [0, 0, 0, 42])
        #expect(PercentDecoding.decode("a%2Fb") == Array("a/b".utf8))
        #expect(PercentDecoding.decode("100%") == Array("100%".utf8))
        #expect(PercentDecoding.decode("%zz") == Array("%zz".utf8))
    }

    /// sequins dies when more than five reconnects fall in the window (`flapCount > flapMax`).
    @Test func flappingIsMoreThanFiveLossesInTheWindow() {
        var detector = FlapDetector(threshold: 5, window: .seconds(1))
        let start = ContinuousClock.now
        for index in 0..<5 {
            let flapping = detector.record(at: start + .milliseconds(index))
            #expect(!flapping)
        }
        for index in 0..<5 {
            let flapping = detector.record(at: start + .seconds(2) + .milliseconds(index))
            #expect(!flapping)
        }
        let flapping = detector.record(at: start + .seconds(2) + .milliseconds(10))
        #expect(flapping)
    }
}
