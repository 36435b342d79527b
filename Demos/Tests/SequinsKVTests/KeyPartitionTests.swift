import Testing
import ZooKeeperTesting

@testable import SequinsKV

@Suite struct KeyPartitionTests {
    @Test func hashCodeMatchesSequinsVectors() {
        #expect(KeyPartition.hashCode(Array("foo bar baz".utf8)) == 1_892_173_108)
        #expect(KeyPartition.hashCode(Array("foobarbaz".utf8)) == -1_165_917_330)
        #expect(KeyPartition.hashCode(Array("The quick brown fox jumped over the lazy dog".utf8)) == 1_953_395_701)
    }

    @Test func partitionAndAlternateMatchSequinsVectors() {
        #expect(KeyPartition(key: Array("bar".utf8), partitionCount: 20) == KeyPartition(partition: 19, alternate: 19))
        #expect(KeyPartition(key: Array("fol".utf8), partitionCount: 20) == KeyPartition(partition: 11, alternate: 11))
        let pathological: [UInt8] = [0x70, 0x17, 0xad, 0x78, 0x8c, 0x5e, 0x85, 0xf1, 0x43, 0x27, 0xf8, 0x67]
        #expect(KeyPartition(key: pathological, partitionCount: 20) == KeyPartition(partition: 19, alternate: 11))
    }

    @Test func partitionsAreInRangeForRandomKeys() {
        var generator = SeededRandomNumberGenerator(seed: 0x8b440d7f)
        for _ in 0..<5000 {
            let key = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let count = Int.random(in: 1...1000, using: &generator)
            let location = KeyPartition(key: key, partitionCount: count)
            #expect((0..<count).contains(location.partition))
            #expect((0..<count).contains(location.alternate))
            if KeyPartition.hashCode(key) <= Int32.max - 32 { #expect(location.alternate == location.partition) }
        }
    }
}
