import Testing
import ZooKeeperTesting

@testable import Coordination

/// sequins' `WaitToConverge` as a pure value, against a direct reading of its rule.
@Suite struct ConvergenceWaitTests {
    typealias Instant = ContinuousClock.Instant
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> Instant { start + .milliseconds(milliseconds) }

    @Test func aQuietGroupConvergesOneQuietPeriodAfterTheStartNotAfterTheFirstSnapshot() {
        var wait = ConvergenceWait(startedAt: at(0), quietPeriod: .milliseconds(1000))
        #expect(wait.converged(at: at(5000)) == nil, "never before the first snapshot")
        wait.record(["a": []], at: at(40))
        #expect(wait.converged(at: at(999)) == nil)
        #expect(wait.converged(at: at(1000)) == ["a": []])
    }

    @Test func aFirstSnapshotAfterTheQuietPeriodEndsTheWaitAtOnce() {
        var wait = ConvergenceWait(startedAt: at(0), quietPeriod: .milliseconds(100))
        wait.record(["a": []], at: at(700))
        #expect(wait.converged(at: at(700)) == ["a": []])
    }

    @Test func everyChangeRestartsTheQuietPeriodAndARepeatDoesNot() {
        var wait = ConvergenceWait(startedAt: at(0), quietPeriod: .milliseconds(1000))
        wait.record(["a": []], at: at(10))
        wait.record(["a": [], "b": []], at: at(800))
        #expect(wait.converged(at: at(1500)) == nil)
        wait.record(["a": [], "b": []], at: at(1200))  // the same members again
        #expect(wait.converged(at: at(1800)) == ["a": [], "b": []])
    }

    /// Random schedules of snapshots: the wait ends at the first millisecond at which a snapshot
    /// has been read, a quiet period has passed since the start, and one has passed since the
    /// last change (a snapshot differing from the one before it, after the first).
    @Test func randomSchedulesEndWhereTheRuleSays() {
        var random = SeededRandomNumberGenerator(seed: 2026)
        for _ in 0..<2000 {
            let quiet = Int.random(in: 1...60, using: &random)
            var events: [(time: Int, members: [String: [UInt8]])] = []
            var time = Int.random(in: 0...40, using: &random)
            var members: [String: [UInt8]] = [:]
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                if Bool.random(using: &random) { members["m\(Int.random(in: 0...3, using: &random))"] = [] }
                if Bool.random(using: &random) { members.removeValue(forKey: "m\(Int.random(in: 0...3, using: &random))") }
                events.append((time, members))
                time += Int.random(in: 0...50, using: &random)
            }
            // The rule, read directly.
            func ruleHolds(at t: Int) -> Bool {
                let seen = events.filter { $0.time <= t }
                guard !seen.isEmpty, t >= quiet else { return false }
                var lastChange: Int?
                for index in seen.indices.dropFirst() where seen[index].members != seen[index - 1].members { lastChange = seen[index].time }
                return lastChange.map { t >= $0 + quiet } ?? true
            }
            let expected = (0...1000).first(where: ruleHolds)
            var wait = ConvergenceWait(startedAt: at(0), quietPeriod: .milliseconds(quiet))
            var pending = events[...]
            var ended: Int?
            for t in 0...1000 {
                while let next = pending.first, next.time <= t {
                    wait.record(next.members, at: at(next.time))
                    pending = pending.dropFirst()
                }
                if wait.converged(at: at(t)) != nil {
                    ended = t
                    break
                }
            }
            #expect(ended == expected, "quiet \(quiet), events \(events.map { "\($0.time):\($0.members.keys.sorted())" })")
        }
    }
}
