import Coordination
import Foundation
import Testing
import ZooKeeperTesting

@testable import SequinsKV

@Suite struct PartitionIndexTests {
    @Test func findsEveryKeyAndOnlyThoseInRandomizedSets() throws {
        var generator = SeededRandomNumberGenerator(seed: 0x4007b672)
        for _ in 0..<50 {
            var expected: [[UInt8]: [UInt8]] = [:]
            var records: [UInt8] = []
            for _ in 0..<Int.random(in: 0...2000, using: &generator) {
                let key = (0..<Int.random(in: 0...12, using: &generator)).map { _ in UInt8.random(in: 0...3, using: &generator) }
                let value = (0..<Int.random(in: 0...20, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                expected[key] = value
                key.withUnsafeBytes { k in value.withUnsafeBytes { v in PartitionIndex.append(key: k, value: v, to: &records) } }
            }
            let index = try PartitionIndex(records: records)
            #expect(index.count == expected.count)
            for (key, value) in expected {
                #expect(key.withUnsafeBytes { index.withValue(for: $0) { Array($0) } } == value)
            }
            let absent: [UInt8] = [9, 9, 9]
            #expect(absent.withUnsafeBytes { index.withValue(for: $0) { _ in true } } == nil)
        }
    }

    @Test func aTruncatedFileIsRejected() {
        var records: [UInt8] = []
        [UInt8](repeating: 1, count: 4).withUnsafeBytes { PartitionIndex.append(key: $0, value: $0, to: &records) }
        #expect(throws: StoreError.self) { try PartitionIndex(records: Array(records.dropLast())) }
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
