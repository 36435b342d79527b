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
                #expect(live == 0 && local != recorded)
                #expect(message.contains("zk clear"))
            case .sync(let fetch, let drop):
                #expect(live > 0 && local != recorded)
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

    @Test func aVoteIsCommittedExactlyWhenZooKeeperRecordsItsResult() {
        let previous = DatabaseVersion(seq: 4, txId: "p")
        let next = DatabaseVersion(seq: 5, txId: "n")
        let transaction = PreparedOperation(operation: .init(kind: .transaction, database: "db"), previous: previous, next: next)
        #expect(transaction.isCommitted(recorded: next))
        #expect(!transaction.isCommitted(recorded: previous))
        #expect(!transaction.isCommitted(recorded: DatabaseVersion(seq: 5, txId: "other")))
        #expect(!transaction.isCommitted(recorded: nil))
        let drop = PreparedOperation(operation: .init(kind: .dropDatabase, database: "db"), previous: previous, next: nil)
        #expect(drop.isCommitted(recorded: nil))
        #expect(!drop.isCommitted(recorded: previous))
    }
}
