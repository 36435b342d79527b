import Foundation
import Testing
import ZooKeeperTesting

@testable import StardogReplicated

/// The pure decisions of the join loop and of the coordinator's rounds, over many random cases.
@Suite struct JoinAndCommitPlanTests {
    static func randomCatalog(_ random: inout SeededRandomNumberGenerator) -> Catalog {
        var catalog: Catalog = [:]
        for name in ["a", "b", "c", "d"] where Bool.random(using: &random) {
            catalog[name] = DatabaseVersion(seq: Int.random(in: 0...3, using: &random), txId: ["x", "y"].randomElement(using: &random)!)
        }
        return catalog
    }

    @Test func joinDecisionsOverRandomStates() {
        var random = SeededRandomNumberGenerator(seed: 0x5eed_0006)
        for _ in 0..<2000 {
            let recorded: Catalog? = Int.random(in: 0..<5, using: &random) == 0 ? nil : Self.randomCatalog(&random)
            let local = Bool.random(using: &random) ? (recorded ?? [:]) : Self.randomCatalog(&random)
            let live = Int.random(in: 0...2, using: &random)
            let decision = JoinPlan.decide(recorded: recorded, local: local, liveMembers: live)
            guard let recorded else {
                #expect(decision == .formCluster)
                continue
            }
            switch decision {
            case .formCluster: Issue.record("formed over recorded state")
            case .register: #expect(local == recorded)
            case .refuse(let message):
                // Only when something must be copied and nobody can give it.
                #expect(live == 0 && local != recorded)
                #expect(recorded.contains { local[$0.key] != $0.value })
                #expect(message.contains("zk clear"))
            case .sync(let fetch, let drop):
                #expect(local != recorded)
                #expect(live > 0 || fetch.isEmpty, "a copy needs a live member")
                // Applying the plan yields exactly the recorded catalog.
                var after = local
                for name in drop { after[name] = nil }
                for name in fetch { after[name] = recorded[name] }
                #expect(after == recorded)
                #expect(Set(fetch).isDisjoint(with: drop))
                #expect(fetch.allSatisfy { local[$0] != recorded[$0] })
            }
        }
    }

    @Test func lockPolicyAfterTheUnlockedAttempts() {
        for unlocked in 0...4 {
            for attempt in 1...8 {
                #expect(JoinPlan.syncsUnderLock(attempt: attempt, unlockedAttempts: unlocked, neverLock: false) == (attempt > unlocked))
                #expect(!JoinPlan.syncsUnderLock(attempt: attempt, unlockedAttempts: unlocked, neverLock: true))
            }
        }
    }

    @Test func roundsExpelEveryFailureAndAbortOnlyWhenTheCoordinatorFails() {
        var random = SeededRandomNumberGenerator(seed: 0x2bc)
        for _ in 0..<1000 {
            let members = (0..<Int.random(in: 1...5, using: &random)).map { "n\($0)" }
            let coordinator = members.randomElement(using: &random)!
            var answers: [String: CommitRound.Answer] = [:]
            for member in members { answers[member] = Bool.random(using: &random) ? .yes : .failed("timeout") }
            let round = CommitRound.afterPrepare(coordinator: coordinator, answers: answers)
            let failed = Set(answers.filter { $0.value != .yes }.keys)
            if failed.contains(coordinator) {
                #expect(!round.proceeds && round.expel.isEmpty && round.abortReason != nil)
            } else {
                #expect(round.proceeds && Set(round.expel) == failed)
            }
            #expect(Set(CommitRound.afterCommit(answers: answers)) == failed)
        }
    }

    /// A model of a round: operations applied one after another to a catalog, each either taking
    /// effect or failing alone.
    @Test func roundPlansMatchSequentialApplicationAndTheirRecord() {
        var random = SeededRandomNumberGenerator(seed: 0x90c0)
        let names = ["a", "b", "c"]
        for _ in 0..<2000 {
            var recorded: Catalog = [:]
            for name in names where Bool.random(using: &random) { recorded[name] = DatabaseVersion(seq: Int.random(in: 0...9, using: &random), txId: "old-\(name)") }
            let operations = (0..<Int.random(in: 0...12, using: &random)).map { _ -> ClusterOperation in
                let kind: ClusterOperation.Kind = [.transaction, .transaction, .transaction, .createDatabase, .dropDatabase].randomElement(using: &random)!
                return ClusterOperation(kind: kind, database: names.randomElement(using: &random)!)
            }
            let malformed: [Int: ReplicatedError] =
                operations.indices.filter { _ in Int.random(in: 0..<10, using: &random) == 0 }
                .reduce(into: [:]) { $0[$1] = ReplicatedError(.malformedRDF, "bad") }
            var counter = 0
            let plan = RoundPlan.plan(operations, malformed: malformed, recorded: recorded) {
                counter += 1
                return "t\(counter)"
            }
            // The model: one operation at a time.
            var current = recorded
            var expectedRejected: Set<Int> = []
            for (position, operation) in operations.enumerated() {
                if malformed[position] != nil {
                    expectedRejected.insert(position)
                    continue
                }
                let exists = current[operation.database] != nil
                switch operation.kind {
                case .transaction where exists: current[operation.database] = DatabaseVersion(seq: current[operation.database]!.seq + 1, txId: "")
                case .createDatabase where !exists: current[operation.database] = DatabaseVersion(seq: 0, txId: "")
                case .dropDatabase where exists: current[operation.database] = nil
                default: expectedRejected.insert(position)
                }
            }
            #expect(Set(plan.rejected.keys) == expectedRejected)
            #expect(Set(plan.positions).isDisjoint(with: expectedRejected) && plan.positions.count + expectedRejected.count == operations.count)
            #expect(plan.positions == plan.positions.sorted())
            // Operations chain: each starts where the one before on its database left it.
            var chained = recorded
            for prepared in plan.prepared {
                #expect(prepared.previous == chained[prepared.operation.database])
                chained[prepared.operation.database] = prepared.next
            }
            #expect(chained.mapValues(\.seq) == current.mapValues(\.seq))
            // The record turns the recorded catalog into the round's outcome, and only then does
            // the round count as committed.
            var after = recorded
            for change in plan.recordChanges(recorded: recorded) {
                switch change {
                case .create(let database, let version):
                    #expect(after[database] == nil)
                    after[database] = version
                case .update(let database, let version):
                    #expect(after[database] != nil)
                    after[database] = version
                case .delete(let database):
                    #expect(after[database] != nil)
                    after[database] = nil
                }
            }
            #expect(after == chained)
            let batch = PreparedBatch(operations: plan.prepared)
            #expect(batch.isCommitted { after[$0] })
            if after != recorded { #expect(!batch.isCommitted { recorded[$0] }) }
        }
    }
}
