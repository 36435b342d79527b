import Testing
import ZooKeeper
import ZooKeeperTesting
@testable import Coordination

@Suite struct LockQueueTests {
    /// Curator's names, as its recipes write them (checked against Curator 5.4's own nodes).
    @Test func parsesCuratorsContenderNames() {
        let guid = "3f688aeb-1fa9-4512-9722-45b346cf1e95"
        let node = LockQueue.parse("_c_\(guid)-lock-0000000042")
        #expect(node == LockQueue.Contender(name: "_c_\(guid)-lock-0000000042", sequence: 42, kind: .exclusive, guid: guid))
        #expect(LockQueue.parse("_c_\(guid)-__READ__0000000001")?.kind == .read)
        #expect(LockQueue.parse("_c_\(guid)-__WRIT__0000000001")?.kind == .write)
        #expect(LockQueue.parse("_c_\(guid)-__WRIT__0000000001")?.guid == guid)
        #expect(LockQueue.parse("_c_\(guid)-latch-0000000003")?.kind == .exclusive)
        #expect(LockQueue.parse("_c_\(guid)-lease-0000000003")?.sequence == 3)
        #expect(LockQueue.parse("_c_\(guid)-lock--2147483647")?.sequence == -2_147_483_647)
        #expect(LockQueue.parse("lock-0000000007")?.guid == nil)
        #expect(LockQueue.parse("something-else") == nil)
        #expect(LockQueue.parse("_c_\(guid)-lock-") == nil)
        #expect(LockQueue.prefix(guid: guid, lockName: "__READ__") == "_c_\(guid)-__READ__")
        #expect(LockQueue.find(guid: guid, in: ["_c_aa-lock-0000000001", "_c_\(guid)-lock-0000000002"]) == "_c_\(guid)-lock-0000000002")
    }

    /// Random names from the pieces contender names are made of (and pieces they are not):
    /// parsing agrees with a plain string search for the last lock name.
    @Test func parsingAgreesWithAStringSearchOnRandomNames() {
        var random = SeededRandomNumberGenerator(seed: 24)
        let pieces = ["_c_", "-", "3f688aeb-1fa9-4512-9722-45b346cf1e95", "lock-", "latch-", "lease-", "__READ__", "__WRIT__",
                      "0000000042", "-2147483647", "12345", "x", "é", "__", "00000000000001"]
        for _ in 0..<20_000 {
            let name = (0..<Int.random(in: 1...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
            #expect(LockQueue.parse(name) == Self.referenceParse(name), "\(name)")
        }
    }

    /// What parse says, written with the standard library's string search.
    static func referenceParse(_ name: String) -> LockQueue.Contender? {
        for (lockName, kind) in LockQueue.lockNames {
            // The last occurrence, overlapping ones included ("__READ__READ__" has two).
            guard let start = name.indices.reversed().first(where: { name[$0...].hasPrefix(lockName) }) else { continue }
            let range = start..<name.index(start, offsetBy: lockName.count)
            let sequenceText = name[range.upperBound...]
            guard sequenceText.utf8.count >= 10, let sequence = Int64(sequenceText) else { continue }
            let head = name[..<range.lowerBound]
            let guid = head.utf8.count > 4 && head.hasPrefix("_c_") && head.hasSuffix("-") ? String(head.dropFirst(3).dropLast()) : nil
            return LockQueue.Contender(name: name, sequence: sequence, kind: kind, guid: guid)
        }
        return nil
    }

    static func name(_ index: Int, _ kind: LockQueue.Kind, sequence: Int) -> String {
        "_c_0000000\(index)-0000-0000-0000-000000000000-\(kind.lockName)" + String(repeating: "0", count: 10 - String(sequence).count) + String(sequence)
    }

    /// Thousands of random queues: for each contender the decision is what the rules say, every
    /// waiter watches a node ahead of it, and the holders are exactly the allowed ones.
    @Test func randomQueuesGrantExactlyTheAllowedHolders() {
        var generator = SeededRandomNumberGenerator(seed: 0xf3016aeb)
        for _ in 0..<3000 {
            let count = Int.random(in: 1...12, using: &generator)
            let readWrite = Bool.random(using: &generator)
            let maxHolders = readWrite ? 1 : Int.random(in: 1...4, using: &generator)
            var sequences = Array(0..<1000).shuffled(using: &generator).prefix(count)
            sequences.sort()
            var names: [String] = []
            for (index, sequence) in sequences.enumerated() {
                let kind: LockQueue.Kind = readWrite ? (Bool.random(using: &generator) ? .read : .write) : .exclusive
                names.append(Self.name(index, kind, sequence: sequence))
            }
            let shuffled = names.shuffled(using: &generator)  // the server lists children in any order
            let decisions = names.map { LockQueue.decide(children: shuffled, ours: $0, maxHolders: maxHolders) }
            let holders = zip(names, decisions).filter { $0.1 == .acquired }.map(\.0)
            if readWrite {
                let firstWriter = names.firstIndex { LockQueue.parse($0)!.kind == .write }
                if let firstWriter, firstWriter == 0 {
                    #expect(holders == [names[0]], "a writer first holds alone")
                } else {
                    // Every reader before the first writer holds, nothing else.
                    #expect(holders == Array(names[..<(firstWriter ?? names.count)]))
                }
                // As Curator decides: a waiting reader watches the first writer, a waiting
                // writer the node just ahead of it.
                for (index, decision) in decisions.enumerated() {
                    guard case .wait(let watched) = decision else { continue }
                    if LockQueue.parse(names[index])!.kind == .read {
                        #expect(watched == names[firstWriter!])
                    } else {
                        #expect(watched == names[index - 1])
                    }
                }
            } else {
                #expect(holders == Array(names.prefix(maxHolders)))
            }
            for (index, decision) in decisions.enumerated() {
                if case .wait(let predecessor) = decision {
                    let ahead = names.firstIndex(of: predecessor)
                    #expect(ahead != nil && ahead! < index, "waits on a node ahead of it")
                }
            }
            #expect(LockQueue.decide(children: shuffled, ours: "_c_missing-lock-0000009999") == .missing)
        }
    }

    @Test func aMutexWaiterWatchesOnlyItsImmediatePredecessor() {
        let names = (0..<5).map { Self.name($0, .exclusive, sequence: $0 * 3) }
        for index in 1..<5 {
            #expect(LockQueue.decide(children: names, ours: names[index]) == .wait(for: names[index - 1]))
        }
        // With several holders allowed, a waiter watches the node maxHolders places ahead.
        #expect(LockQueue.decide(children: names, ours: names[4], maxHolders: 2) == .wait(for: names[2]))
    }

    @Test func lossPolicies() {
        let info = SessionInfo(sessionID: 1, negotiatedTimeout: .seconds(3), generation: 2)
        let next = SessionInfo(sessionID: 2, negotiatedTimeout: .seconds(3), generation: 3)
        for policy in [LossPolicy.onSuspended, .onPresumedExpired] {
            #expect(policy.isLoss(.suspended(info), heldOn: 2) == (policy == .onSuspended))
            #expect(policy.isLoss(.presumedExpired(info), heldOn: 2))
            #expect(policy.isLoss(.expired(info), heldOn: 2))
            #expect(policy.isLoss(.closed, heldOn: 2))
            #expect(!policy.isLoss(.connected(info), heldOn: 2))
            #expect(policy.isLoss(.connected(next), heldOn: 2))
            #expect(policy.isLoss(.newSession(next), heldOn: 2))
            #expect(!policy.isLoss(.connecting, heldOn: 2))
            // A read-only server cannot keep the session alive on the quorum's side.
            #expect(policy.isLoss(.readOnly(info), heldOn: 2))
        }
    }
}
