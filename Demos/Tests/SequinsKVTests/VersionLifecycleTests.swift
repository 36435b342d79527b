import Testing
import ZooKeeperTesting

@testable import SequinsKV

@Suite struct VersionLifecycleTests {
    @Test func upgradesOnlyForward() {
        var lifecycle = VersionLifecycle()
        _ = lifecycle.prepare("2")
        #expect(lifecycle.upgrade(to: "2", keepPrevious: true) == [.activate("2")])
        _ = lifecycle.prepare("3")
        #expect(lifecycle.upgrade(to: "3", keepPrevious: true) == [.activate("3"), .removeAfterTimeout("2")])
        _ = lifecycle.prepare("1")
        #expect(lifecycle.upgrade(to: "1", keepPrevious: true) == [.removeNow("1")])
        #expect(lifecycle.current == "3")
        #expect(lifecycle.versionForPeer(asking: "2") == "2")
        #expect(lifecycle.removalTimedOut("2") == [.removeNow("2")])
        #expect(lifecycle.versionForPeer(asking: "2") == "3")
        #expect(lifecycle.candidates(from: ["1", "2", "3", "4", "5"]) == ["5", "4"])
    }

    @Test func olderPreparedVersionsGoAtOnceAndNewerOnesStay() {
        var lifecycle = VersionLifecycle()
        for name in ["1", "2", "3", "4"] { _ = lifecycle.prepare(name) }
        _ = lifecycle.upgrade(to: "1", keepPrevious: true)
        let actions = lifecycle.upgrade(to: "3", keepPrevious: true)
        #expect(actions == [.activate("3"), .removeAfterTimeout("1"), .removeNow("2")])
        #expect(lifecycle.prepared == ["1", "3", "4"])
        #expect(lifecycle.upgrade(to: "3", keepPrevious: true).isEmpty)
    }

    @Test func randomizedSequencesNeverDowngradeAndKeepCurrentPrepared() {
        var generator = SeededRandomNumberGenerator(seed: 0xd70181b6)
        for _ in 0..<2000 {
            var lifecycle = VersionLifecycle()
            var highestActivated: String?
            for _ in 0..<30 {
                let name = String(Int.random(in: 10...30, using: &generator))
                switch Int.random(in: 0..<3, using: &generator) {
                case 0:
                    _ = lifecycle.prepare(name)
                case 1:
                    let actions = lifecycle.upgrade(to: name, keepPrevious: Bool.random(using: &generator))
                    for case .activate(let activated) in actions {
                        if let highest = highestActivated { #expect(activated > highest) }
                        highestActivated = activated
                    }
                default:
                    if let removing = lifecycle.removing.randomElement(using: &generator) { _ = lifecycle.removalTimedOut(removing) }
                }
                #expect(lifecycle.current == highestActivated)
                if let current = lifecycle.current {
                    #expect(lifecycle.prepared.contains(current))
                    #expect(!lifecycle.removing.contains(current))
                    #expect(lifecycle.candidates(from: [name]).allSatisfy { $0 > current })
                }
                #expect(lifecycle.removing.isSubset(of: lifecycle.prepared))
            }
        }
    }
}
