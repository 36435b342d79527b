import Testing
import ZooKeeperTesting
@testable import Coordination

@Suite struct StaticPartitionAssignerTests {
    // The tables of seed-systems §1.5 (sequins' TestClusterPartitionAssignment and TestMaxReplication).
    @Test func reproducesSequinsFiveNodeTable() {
        let assigner = StaticPartitionAssigner(partitionCount: 5, replication: 3)
        let ids = ["1", "2", "3", "4", "5"]
        let expected: [String: [Int]] = ["1": [0, 1, 3], "2": [0, 2, 3], "3": [0, 2, 4], "4": [1, 2, 4], "5": [1, 3, 4]]
        #expect(assigner.assignment(members: ids) == expected)
    }

    @Test func reproducesSequinsSixNodeTable() {
        let assigner = StaticPartitionAssigner(partitionCount: 5, replication: 3)
        let table = assigner.assignment(members: ["1", "2", "3", "4", "5", "6"])
        for id in ["1", "2", "3"] { #expect(table[id] == [0, 2, 4]) }
        for id in ["4", "5", "6"] { #expect(table[id] == [1, 3]) }
    }

    @Test func reproducesSequinsMaxReplicationExample() {
        let assigner = StaticPartitionAssigner(partitionCount: 5, replication: 2)
        #expect(assigner.partitions(for: "1", members: [], maxReplication: 2) == [0, 1, 2, 3, 4])
        let heldOnce = Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, 1) })
        #expect(assigner.partitions(for: "2", members: ["1"], maxReplication: 2, remoteHolders: heldOnce) == [0, 1, 2, 3, 4])
        let heldTwice = Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, 2) })
        #expect(assigner.partitions(for: "3", members: ["1", "2"], maxReplication: 2, remoteHolders: heldTwice) == [])
        #expect(assigner.partitions(for: "4", members: ["1", "2", "3"], maxReplication: 0, remoteHolders: heldTwice) == [1, 3])
    }

    @Test func duplicateShardIDsShareASlotAndExtraNodesGetNothing() {
        let assigner = StaticPartitionAssigner(partitionCount: 2, replication: 1)
        // A replacement node with a dead node's id takes over exactly its partitions.
        #expect(assigner.partitions(for: "2", members: ["1", "2", "2"]) == [1])
        // More ids than slots: the ones past partitions × replication get nothing.
        #expect(assigner.partitions(for: "3", members: ["1", "2"]) == [])
    }

    @Test func orderIsLexicographicByDefaultAndNumericOnRequest() {
        let ids = ["2", "10", "1"]
        let lexicographic = StaticPartitionAssigner(partitionCount: 3, replication: 1)
        #expect(lexicographic.assignment(members: ids) == ["1": [0], "10": [1], "2": [2]])  // "10" < "2", as sequins
        let numeric = StaticPartitionAssigner(partitionCount: 3, replication: 1, strategy: .roundRobin(.numeric))
        #expect(numeric.assignment(members: ids) == ["1": [0], "2": [1], "10": [2]])
        // Mixed ids: one order, whatever order the members are listed in (integers first).
        let mixed = ["10x", "2", "10", "b", "007", "7"]
        #expect(numeric.orderedIDs(mixed) == ["2", "007", "7", "10", "10x", "b"])
        var random = SeededRandomNumberGenerator(seed: 41)
        for _ in 0..<200 { #expect(numeric.orderedIDs(mixed.shuffled(using: &random)) == numeric.orderedIDs(mixed)) }
    }

    static func randomMembers(_ generator: inout some RandomNumberGenerator) -> [String] {
        let count = Int.random(in: 1...30, using: &generator)
        return (0..<count).map { _ in String(Int.random(in: 1...40, using: &generator)) }
    }

    /// Thousands of random inputs: determinism regardless of input order, every partition held by
    /// min(R, distinct ids) distinct ids, and (round-robin) slot counts balanced within one.
    @Test(arguments: [StaticPartitionAssigner.Strategy.roundRobin(.lexicographic), .roundRobin(.numeric), .rendezvous])
    func randomInputsKeepTheProperties(_ strategy: StaticPartitionAssigner.Strategy) {
        var generator = SeededRandomNumberGenerator(seed: 0x97fe3f91)
        for _ in 0..<1000 {
            let assigner = StaticPartitionAssigner(
                partitionCount: Int.random(in: 0...40, using: &generator), replication: Int.random(in: 1...4, using: &generator),
                strategy: strategy)
            let members = Self.randomMembers(&generator)
            let table = assigner.assignment(members: members)
            #expect(table == assigner.assignment(members: members.shuffled(using: &generator)), "deterministic")
            let distinct = Set(members).count
            for partition in 0..<assigner.partitionCount {
                let holders = table.filter { $0.value.contains(partition) }.count
                #expect(holders == min(assigner.replication, distinct), "partition \(partition): \(holders) holders")
            }
            if case .roundRobin = strategy, distinct >= assigner.replication {
                // Partitions per id differ by at most one (with at least R ids, an id's slots are
                // distinct partitions, so its partition count is its slot count).
                let counts = Set(members).map { table[$0]?.count ?? 0 }
                #expect(counts.max()! - counts.min()! <= 1, "partitions per id: \(counts)")
            }
        }
    }

    /// The rendezvous fast path (count the ids ranked above us) agrees with the plain definition
    /// (sort every id by weight and take the first `replication`).
    @Test func rendezvousFastPathAgreesWithTheDefinition() {
        var generator = SeededRandomNumberGenerator(seed: 0x0ef76e2b)
        for _ in 0..<300 {
            let assigner = StaticPartitionAssigner(partitionCount: 50, replication: Int.random(in: 1...4, using: &generator), strategy: .rendezvous)
            let members = Self.randomMembers(&generator)
            let ids = assigner.orderedIDs(members)
            for id in Set(members) {
                let reference = (0..<50).filter { assigner.holders(of: $0, ids: ids).contains(id) }
                #expect(assigner.partitions(for: id, members: members) == reference)
            }
        }
    }

    /// Rendezvous hashing moves only what a new member takes: every other partition keeps its holders.
    @Test func rendezvousMovesOnlyWhatANewMemberTakes() {
        var generator = SeededRandomNumberGenerator(seed: 0x79f05ebd)
        for _ in 0..<500 {
            let assigner = StaticPartitionAssigner(partitionCount: 64, replication: Int.random(in: 1...3, using: &generator), strategy: .rendezvous)
            let members = Array(Set(Self.randomMembers(&generator)))
            let newcomer = "new-\(Int.random(in: 0...1000, using: &generator))"
            let before = assigner.assignment(members: members)
            let after = assigner.assignment(members: members + [newcomer])
            for partition in 0..<64 {
                let old = Set(before.filter { $0.value.contains(partition) }.keys)
                let new = Set(after.filter { $0.value.contains(partition) }.keys)
                if !new.contains(newcomer) {
                    #expect(old == new)
                } else {
                    #expect(new.subtracting([newcomer]).isSubset(of: old))
                    #expect(old.subtracting(new).count <= 1)
                }
            }
        }
    }

    @Test func replicationTallyAndAdvertisementNames() {
        #expect(PartitionAdvertisement(partition: 3, holder: "10.0.0.5:9599").name == "00003@10.0.0.5:9599")
        #expect(PartitionAdvertisement(partition: 123_456, holder: "h").name == "123456@h")
        #expect(PartitionAdvertisement(name: "00012@h:1") == PartitionAdvertisement(partition: 12, holder: "h:1"))
        #expect(PartitionAdvertisement(name: "junk") == nil)
        #expect(PartitionAdvertisement(name: "-1@h") == nil)
        let tally = PartitionReplication(advertisements: ["00000@a:1", "00000@b:1", "00002@a:1", "junk", "00009@a:1"], partitionCount: 3)
        #expect(tally.counts == [2, 0, 1])
        #expect(tally.missing(minReplication: 1) == [1])
        #expect(!tally.isReady(minReplication: 1))
        #expect(PartitionReplication(advertisements: [], partitionCount: 0).isReady(minReplication: 2))
    }

    /// A member's own advertisements, written, missing or left by its previous process, never
    /// count: what it holds now does, once per partition, beside every other holder's.
    @Test func countingWhatAMemberHoldsReplacesItsOwnAdvertisements() {
        var generator = SeededRandomNumberGenerator(seed: 0x5eb1a2c4)
        let holders = ["me:1", "a:1", "b:1", "c:1"]
        for _ in 0..<1000 {
            let partitionCount = Int.random(in: 0...12, using: &generator)
            var names: [String] = []
            var others = Array(repeating: Set<String>(), count: partitionCount)
            for partition in 0..<partitionCount {
                for holder in holders where Bool.random(using: &generator) {
                    names.append(PartitionAdvertisement(partition: partition, holder: holder).name)
                    if holder != "me:1" { others[partition].insert(holder) }
                }
            }
            if Bool.random(using: &generator) { names.append("junk") }
            names.shuffle(using: &generator)
            let held = (0..<(partitionCount + 2)).filter { _ in Bool.random(using: &generator) }
            let replication = PartitionReplication(advertisements: names, partitionCount: partitionCount)
            let seen = replication.counting(held + held, heldBy: "me:1")
            let expected = (0..<partitionCount).map { others[$0].count + (held.contains($0) ? 1 : 0) }
            #expect(seen.counts == expected)
            #expect(seen.holders(excluding: "me:1").mapValues(Set.init) == replication.holders(excluding: "me:1").mapValues(Set.init))
            let minReplication = Int.random(in: 0...3, using: &generator)
            #expect(seen.isReady(minReplication: minReplication) == expected.allSatisfy { $0 >= minReplication })
        }
        // Counts alone are other members' counts.
        #expect(PartitionReplication(counts: [0, 1, 2]).counting([0, 2, 7], heldBy: "me:1").counts == [1, 1, 3])
    }
}
