import Testing
import ZooKeeperTesting

@testable import SequinsKV

/// Snappy as Hadoop's `SnappyCodec` frames it.
@Suite struct SnappyTests {
    func decode(_ bytes: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        try bytes.withUnsafeBytes { try Snappy.decompressRaw($0, appendingTo: &output) }
        return output
    }

    @Test func handWrittenChunksWithEveryKindOfElement() throws {
        // "abcd" as a literal, then a 1-byte-offset copy of 8 ("abcdabcd", overlapping), then a
        // 4-byte-offset copy of 3 ("abc").
        let chunk: [UInt8] = [15, 3 << 2] + Array("abcd".utf8) + [0x01 | (4 << 2), 4] + [0x03 | (2 << 2), 12, 0, 0, 0]
        #expect(try decode(chunk) == Array("abcdabcdabcdabc".utf8))
        // A literal of 70 bytes, whose length takes one extra byte.
        let long = [UInt8](repeating: 0x61, count: 70)
        #expect(try decode([70, 60 << 2, 69] + long) == long)
    }

    @Test func malformedChunksAreErrorsNotCrashes() {
        for bad: [UInt8] in [[5, 0], [4, 0x01 | (0 << 2), 9], [2, 3 << 2, 0x61], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [3, 0x02, 1]] {
            #expect(throws: Snappy.Malformed.self) { _ = try decode(bad) }
        }
        let framed: [UInt8] = [0, 0, 0, 9, 0, 0, 0, 200, 1, 2]
        #expect(throws: Snappy.Malformed.self) { _ = try framed.withUnsafeBytes { try Snappy.decompressHadoopBlocks($0) } }
        // Lengths that claim far more than the input can decode to are refused before any memory
        // is reserved for them (a chunk of about 32 GiB, a block of 4 GiB).
        #expect(throws: Snappy.Malformed.self) { _ = try decode([0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x61]) }
        let hugeBlock: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 3, 1, 0, 0x61]
        #expect(throws: Snappy.Malformed.self) { _ = try hugeBlock.withUnsafeBytes { try Snappy.decompressHadoopBlocks($0) } }
    }

    @Test func randomDataRoundTripsThroughTheCompressor() throws {
        var random = SeededRandomNumberGenerator(seed: 11)
        for _ in 0..<300 {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 0..<40, using: &random) {
                if Bool.random(using: &random), input.count > 4 {
                    let start = Int.random(in: 0..<input.count, using: &random)
                    input += input[start..<min(input.count, start + Int.random(in: 1...300, using: &random))]
                } else {
                    input += (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 97...100, using: &random) }
                }
            }
            let framed = Snappy.compressHadoopBlock(input)
            #expect(try framed.withUnsafeBytes { try Snappy.decompressHadoopBlocks($0) } == input)
            if input.count > 1000, Set(input).count < 8 { #expect(framed.count < input.count, "repetitive data shrinks") }
        }
    }
}
