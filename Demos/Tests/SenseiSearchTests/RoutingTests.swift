import Testing

@testable import SenseiSearch

/// Sensei's Norbert-era `TestLoadBalancer` cases: nodes 1:{1,2,3}, 2:{2,3}, 3:{1,3}, 4:{1}, 5:{2,3}.
@Suite struct RoutingTests {
    static let view: [Int: [Int]] = [1: [1, 3, 4], 2: [1, 2, 5], 3: [1, 2, 3, 5]]

    @Test func theSameKeyAlwaysPicksTheSameReplicaOnEveryBroker() {
        let one = ConsistentHashRouter(view: Self.view)
        let other = ConsistentHashRouter(view: Self.view)  // another broker process
        for key in 0..<1000 {
            for partition in 1...3 {
                let node = one.route("key-\(key)", partition: partition)
                #expect(node != nil)
                #expect(node == other.route("key-\(key)", partition: partition))
                #expect(Self.view[partition]!.contains(node!))
            }
        }
    }

    @Test func removingANodeMovesOnlyItsKeysAboutOneKth() {
        let before = ConsistentHashRouter(view: Self.view)
        var withoutFour = Self.view
        withoutFour[1] = [1, 3]
        let after = ConsistentHashRouter(view: withoutFour)
        var moved = 0
        var movedTo: [Int: Int] = [:]
        for key in 0..<1000 {
            for partition in [2, 3] { #expect(before.route("key-\(key)", partition: partition) == after.route("key-\(key)", partition: partition)) }
            let old = before.route("key-\(key)", partition: 1)!
            let new = after.route("key-\(key)", partition: 1)!
            if old != new {
                #expect(old == 4, "only node 4's keys move")
                moved += 1
                movedTo[new, default: 0] += 1
            }
        }
        #expect((250...420).contains(moved), "about a third of the keys: \(moved)")
        #expect(movedTo.count == 2 && movedTo.values.allSatisfy { Double($0) > Double(moved) * 0.35 }, "moved keys spread: \(movedTo)")
    }

    @Test func keysSpreadEvenlyOverReplicas() {
        let router = ConsistentHashRouter(view: Self.view)
        for partition in 1...3 {
            var counts: [Int: Int] = [:]
            for key in 0..<10_000 { counts[router.route("key-\(key)", partition: partition)!, default: 0] += 1 }
            let mean = 10_000.0 / Double(counts.count)
            let deviation = (counts.values.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(counts.count)).squareRoot()
            #expect(deviation < mean * 0.05, "partition \(partition): \(counts)")
        }
    }

    @Test func aPlanCoversEveryLivePartitionOnce() {
        let router = ConsistentHashRouter(view: [0: [1], 1: [1, 2], 2: [2], 3: []])
        #expect(router.partitions == [0, 1, 2])
        for key in 0..<100 {
            let plan = router.plan(for: "k\(key)")
            #expect(plan.values.flatMap { $0 }.sorted() == [0, 1, 2])
        }
        #expect(ConsistentHashRouter(view: [:]).plan(for: "x").isEmpty)
    }

    /// The broker of a search node takes its own replica of each partition it serves live; the
    /// other partitions keep the router's choice, and every planned partition is still asked once.
    @Test func aBrokerPrefersItsOwnLiveReplicas() {
        for key in 0..<500 {
            let plan = ConsistentHashRouter(view: Self.view).plan(for: "k\(key)")
            let addresses = Self.view.mapValues { $0.map { SearchNodeAddress(nodeId: $0, address: "n\($0)") } }
            for node in 1...6 {
                let preferred = SearchBroker.preferring(node, in: plan, view: addresses)
                #expect(preferred.values.flatMap { $0 }.sorted() == plan.values.flatMap { $0 }.sorted())
                for (partition, replicas) in Self.view {
                    let owner = preferred.first { $0.value.contains(partition) }?.key
                    let planned = plan.first { $0.value.contains(partition) }?.key
                    #expect(owner == (replicas.contains(node) ? node : planned), "key \(key), node \(node), partition \(partition)")
                }
            }
        }
    }
}

