import DemoSupport
import Coordination
import Foundation
import NIOCore
import Testing
import ZooKeeperTesting

@testable import SequinsKV

@Suite struct PartitionIndexTests {
    /// Random partitions of text-like values (Huffman-coded) and of random bytes (kept as they
    /// are): every key is found with its last value, through both lookups and after a reopen of
    /// the stored format, and nothing else is.
    @Test func findsEveryKeyAndOnlyThoseInRandomizedSets() throws {
        var generator = SeededRandomNumberGenerator(seed: 0x4007b672)
        var codings: Set<UInt8> = []
        for round in 0..<60 {
            let textLike = round % 2 == 0
            var expected: [[UInt8]: [UInt8]] = [:]
            var records: [UInt8] = []
            for _ in 0..<Int.random(in: 0...2000, using: &generator) {
                let key = (0..<Int.random(in: 0...12, using: &generator)).map { _ in UInt8.random(in: 0...3, using: &generator) }
                let value = (0..<Int.random(in: 0...200, using: &generator)).map { _ in
                    textLike ? UInt8.random(in: 97...108, using: &generator) : UInt8.random(in: 0...255, using: &generator)
                }
                expected[key] = value
                key.withUnsafeBytes { k in value.withUnsafeBytes { v in PartitionIndex.append(key: k, value: v, to: &records) } }
            }
            let built = try PartitionIndex(records: records)
            let reopened = try PartitionIndex(stored: built.stored)
            if built.stored.count > 4 { codings.insert(built.stored[4]) }
            for index in [built, reopened] {
                #expect(index.count == expected.count)
                for (key, value) in expected {
                    #expect(key.withUnsafeBytes { index.withValue(for: $0) { Array($0) } } == value)
                    let buffer = key.withUnsafeBytes { index.value(for: $0, allocator: ByteBufferAllocator()) }
                    #expect(buffer.map { Array($0.readableBytesView) } == value)
                }
                let absent: [UInt8] = [9, 9, 9]
                #expect(absent.withUnsafeBytes { index.withValue(for: $0) { _ in true } } == nil)
            }
            if textLike && records.count > 20_000 { #expect(built.stored.count * 10 < records.count * 8, "text-like values shrink") }
        }
        #expect(codings == [0, 1], "both codings were exercised")
    }

    @Test func truncatedOrForeignPartitionsAreRejected() throws {
        var records: [UInt8] = []
        Array("a value that is long enough to be worth coding, a value".utf8).withUnsafeBytes { PartitionIndex.append(key: $0, value: $0, to: &records) }
        #expect(throws: StoreError.self) { try PartitionIndex(records: Array(records.dropLast())) }
        let stored = try PartitionIndex(records: records).stored
        #expect(throws: StoreError.self) { try PartitionIndex(stored: Array(stored.dropLast())) }
        let error = #expect(throws: StoreError.self) { try PartitionIndex(stored: records) }
        #expect(error?.description.contains("KVP2") == true, "a file of the old format is named as such")
    }

    @Test func huffmanCodesRoundTripAndStayWithinTheLengthLimit() {
        var generator = SeededRandomNumberGenerator(seed: 99)
        for _ in 0..<300 {
            // Skewed frequencies force long codes, which the limit must cut.
            let alphabet = Int.random(in: 1...256, using: &generator)
            let bytes = (0..<Int.random(in: 1...3000, using: &generator)).map { _ -> UInt8 in
                let draw = Double.random(in: 0..<1, using: &generator)
                return UInt8(min(alphabet - 1, Int(Double(alphabet) * draw * draw * draw)))
            }
            var frequencies = [Int](repeating: 0, count: 256)
            for byte in bytes { frequencies[Int(byte)] += 1 }
            let code = HuffmanCode(frequencies: frequencies)
            #expect(code.lengths.allSatisfy { $0 <= HuffmanCode.maxLength })
            #expect(HuffmanCode(lengths: code.lengths) == code, "the stored lengths make the same code")
            var encoded: [UInt8] = []
            bytes.withUnsafeBytes { code.encode($0, appendingTo: &encoded) }
            #expect(encoded.count == code.encodedSize(frequencies))
            var decoded = [UInt8](repeating: 0, count: bytes.count)
            let ok = encoded.withUnsafeBytes { input in decoded.withUnsafeMutableBytes { code.decode(input, count: bytes.count, into: $0) } }
            #expect(ok && decoded == bytes)
        }
        #expect(HuffmanCode(lengths: [UInt8](repeating: 1, count: 256)) == nil, "not a prefix code")
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
        #expect(RequestTarget("/db/k?proxy").proxy == "")
        #expect(RequestTarget("/db/k?proxyx=1").proxy == nil)
    }

    @Test func percentDecodingKeepsRawBytes() {
        #expect(PercentDecoding.decode("%00%00%00%2A") == [0, 0, 0, 42])
        #expect(PercentDecoding.decode("a%2Fb") == Array("a/b".utf8))
        #expect(PercentDecoding.decode("100%") == Array("100%".utf8))
        #expect(PercentDecoding.decode("%zz") == Array("%zz".utf8))
    }

    @Test func flappingIsFiveLossesInTheWindow() {
        var detector = FlapDetector(threshold: 5, window: .seconds(1))
        let start = ContinuousClock.now
        for index in 0..<4 {
            let flapping = detector.record(at: start + .milliseconds(index))
            #expect(!flapping)
        }
        for index in 0..<4 {
            let flapping = detector.record(at: start + .seconds(2) + .milliseconds(index))
            #expect(!flapping)
        }
        let flapping = detector.record(at: start + .seconds(2) + .milliseconds(10))
        #expect(flapping)
    }
}
