import DemoTestSupport
import Foundation
import Testing
import ZooKeeperTesting

@testable import SequinsKV

@Suite struct SequenceFileTests {
    static let sharedData = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../../shared/data/sequins-test-databases").standardized.path
    /// sequins' Hadoop-written test databases are on the project's machines, not a user's.
    static let hasSharedData = FileManager.default.fileExists(atPath: sharedData + "/healthy/baby-names/1")

    func readAll(_ path: String) throws -> [(String, String)] {
        var reader = try SequenceFileReader(path: path)
        var records: [(String, String)] = []
        try reader.forEachRecord { key, value in
            records.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            return true
        }
        return records
    }

    @Test(.enabled(if: hasSharedData, "../shared/data is not present: sequins' Hadoop-written files are only on the project's machines"))
    func readsHadoopWrittenBabyNames() throws {
        let directory = Self.sharedData + "/healthy/baby-names/1"
        var all: [(String, String)] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            let reader = try SequenceFileReader(path: directory + "/" + file)
            #expect(reader.header.keyClass == "org.apache.hadoop.io.BytesWritable")
            #expect(reader.header.compression == .none)
            all += try readAll(directory + "/" + file)
        }
        #expect(all.count == 64)
        #expect(all.contains { $0 == ("1881/boy", "John") })
        #expect(all.contains { $0 == ("1933/boy", "Robert") })
    }

    @Test(.enabled(if: hasSharedData, "../shared/data is not present: sequins' Hadoop-written files are only on the project's machines"))
    func rejectsTheUnhealthyDatabase() throws {
        let file = Self.sharedData + "/unhealthy/baby-names-bad/1/part-00000"
        #expect(throws: SequenceFileError.self) { _ = try readAll(file) }
    }

    @Test(arguments: [
        SequenceFileWriter.Compression.none, .record(.zlib), .record(.gzip), .record(.snappy), .block(.zlib, blockSize: 4096),
        .block(.gzip, blockSize: 4096), .block(.snappy, blockSize: 4096), .block(.zlib), .block(.snappy),
    ])
    func roundTripsEveryCompression(_ compression: SequenceFileWriter.Compression) throws {
        let directory = try makeTemporaryDirectory("kv-seqfile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (keyClass, valueClass) in [(SequenceFileWriter.WritableClass.bytesWritable, SequenceFileWriter.WritableClass.bytesWritable), (.text, .text)] {
            let path = directory + "/part-\(keyClass)"
            let writer = try SequenceFileWriter(path: path, keyClass: keyClass, valueClass: valueClass, compression: compression)
            var expected: [(String, String)] = []
            for index in 0..<3000 {
                let key = "key-\(index)"
                let value = String(repeating: "v\(index % 7)", count: index % 50)
                expected.append((key, value))
                try writer.append(key: Array(key.utf8), value: Array(value.utf8))
            }
            try writer.finish()
            let records = try readAll(path)
            #expect(records.count == expected.count)
            #expect(records.elementsEqual(expected, by: ==))
        }
    }

    @Test func anUnsupportedCodecIsAClearError() throws {
        let directory = try makeTemporaryDirectory("kv-seqfile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/lz4"
        var bytes = Array("SEQ".utf8) + [6]
        for text in ["org.apache.hadoop.io.BytesWritable", "org.apache.hadoop.io.BytesWritable", "org.apache.hadoop.io.compress.Lz4Codec"] {
            if text.contains("Lz4") { bytes += [1, 1] }
            var encoded: [UInt8] = []
            HadoopVInt.encode(text.utf8.count, into: &encoded)
            bytes += encoded + Array(text.utf8)
        }
        bytes += [0, 0, 0, 0] + Array(repeating: 7, count: 16)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SequenceFileError.self) { _ = try SequenceFileReader(path: path) }
        #expect(error?.code == .unsupportedCodec)
        #expect(error?.description.contains("Lz4Codec") == true)
        #expect(error?.description.contains("supported: org.apache.hadoop.io.compress.DefaultCodec, org.apache.hadoop.io.compress.GzipCodec, org.apache.hadoop.io.compress.SnappyCodec") == true)
    }

    @Test func aTruncatedFileIsAnError() throws {
        let directory = try makeTemporaryDirectory("kv-seqfile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/whole"
        let writer = try SequenceFileWriter(path: path, compression: .block(.zlib))
        for index in 0..<100 { try writer.append(key: Array("k\(index)".utf8), value: Array("value".utf8)) }
        try writer.finish()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 10).write(to: URL(fileURLWithPath: path))
        #expect(throws: SequenceFileError.self) { _ = try readAll(path) }
    }

    /// A length field asking for more than the file holds (here the key class name's, as large
    /// as a VInt goes) is an error naming the file, not an allocation that stops the process.
    @Test func aLengthPastTheEndOfTheFileIsAnError() throws {
        let directory = try makeTemporaryDirectory("kv-seqfile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/hostile"
        let bytes: [UInt8] = Array("SEQ".utf8) + [6, 0x88, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + Array(repeating: 0, count: 32)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try readAll(path)
        } throws: { error in
            (error as? SequenceFileError)?.description.contains(path) == true
        }
    }

    @Test func hadoopVIntRoundTrips() {
        var generator = SeededRandomNumberGenerator(seed: 0xebf0ae69)
        let samples = [0, 1, -1, 127, 128, -112, -113, 255, 256, Int(Int32.max), Int(Int32.min), Int.max, Int.min]
            + (0..<2000).map { _ in Int.random(in: Int.min...Int.max, using: &generator) >> Int.random(in: 0...63, using: &generator) }
        for value in samples {
            var bytes: [UInt8] = []
            HadoopVInt.encode(value, into: &bytes)
            var cursor = 0
            let decoded = bytes.withUnsafeBytes { HadoopVInt.decode($0, at: &cursor) }
            #expect(decoded == value)
            #expect(cursor == bytes.count)
        }
    }
}
