import Synchronization
import Testing
import ZooKeeperTesting

@testable import StardogReplicated

/// The group commit queue on its own: rounds never overlap, every submitter gets the answer to
/// its own operation, operations submitted during a round wait for the next one and share it,
/// and a round carries no more than its weight limit.
@Suite struct GroupCommitQueueTests {
    final class Observations: Sendable {
        let state = Mutex<(running: Int, maxRunning: Int, rounds: [[Int]])>((0, 0, []))
    }

    @Test func concurrentSubmittersShareRoundsAndEachGetsItsOwnAnswer() async throws {
        var random = SeededRandomNumberGenerator(seed: 0x6c0)
        let weights = (0..<300).map { _ in Int.random(in: 1...4, using: &random) }
        let maxWeight = 10
        let queue = GroupCommitQueue<Int, Int>(maxWeight: maxWeight, weigh: { weights[$0] })
        let observed = Observations()
        let round: GroupCommitQueue<Int, Int>.Round = { take in
            let operations = take()
            observed.state.withLock {
                $0.running += 1
                $0.maxRunning = max($0.maxRunning, $0.running)
                $0.rounds.append(operations)
            }
            try? await Task.sleep(for: .milliseconds(5))
            observed.state.withLock { $0.running -= 1 }
            // Odd operations fail alone; the others answer with their own value.
            return operations.map { $0 % 2 == 1 ? .failure(ReplicatedError(.malformedRDF, "odd \($0)")) : .success($0 * 10) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for operation in weights.indices {
                group.addTask {
                    do {
                        let answer = try await queue.submit(operation, round: round)
                        #expect(operation % 2 == 0 && answer == operation * 10)
                    } catch let error as ReplicatedError {
                        #expect(operation % 2 == 1 && error.message == "odd \(operation)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let (maxRunning, rounds) = observed.state.withLock { ($0.maxRunning, $0.rounds) }
        #expect(maxRunning == 1)
        #expect(rounds.flatMap { $0 }.sorted() == Array(weights.indices))
        for operations in rounds where operations.count > 1 {
            #expect(operations.map { weights[$0] }.reduce(0, +) <= maxWeight)
        }
        #expect(rounds.count < weights.count, "no round carried more than one operation")
    }

    /// Operations submitted together (a member's forwarded batch) are queued one after the other:
    /// every one gets its own result, in order, and a round takes them in the order they came,
    /// the rest going to the next round when they do not all fit.
    @Test func operationsSubmittedTogetherGetTheirOwnResultsInOrder() async throws {
        var random = SeededRandomNumberGenerator(seed: 0xba7c)
        let batches = (0..<60).map { index in (0..<Int.random(in: 0...7, using: &random)).map { index * 100 + $0 } }
        let maxWeight = 5
        let queue = GroupCommitQueue<Int, Int>(maxWeight: maxWeight, weigh: { _ in 1 })
        let rounds = Mutex<[[Int]]>([])
        let round: GroupCommitQueue<Int, Int>.Round = { take in
            let operations = take()
            rounds.withLock { $0.append(operations) }
            try? await Task.sleep(for: .milliseconds(2))
            return operations.map { $0 % 3 == 0 ? .failure(ReplicatedError(.malformedRDF, "\($0)")) : .success($0 * 10) }
        }
        await withTaskGroup(of: Void.self) { group in
            for batch in batches {
                group.addTask {
                    let results = await queue.submit(batch, round: round)
                    #expect(results.count == batch.count)
                    for (operation, result) in zip(batch, results) {
                        switch result {
                        case .success(let value): #expect(operation % 3 != 0 && value == operation * 10)
                        case .failure(let error): #expect(operation % 3 == 0 && (error as? ReplicatedError)?.message == "\(operation)")
                        }
                    }
                }
            }
        }
        let carried = rounds.withLock { $0 }
        #expect(carried.allSatisfy { $0.count <= maxWeight })
        #expect(carried.flatMap { $0 }.sorted() == batches.flatMap { $0 }.sorted())
        for (index, batch) in batches.enumerated() {
            // In the order submitted: the rounds, one after the other, carry the batch in order.
            #expect(carried.flatMap { $0 }.filter { $0 / 100 == index } == batch)
        }
    }

    /// Clients that commit in a loop come back as soon as they are answered: the rounds wait for
    /// them (briefly) instead of splitting them into cohorts that alternate.
    @Test func clientsCommittingInALoopShareOneRound() async throws {
        let queue = GroupCommitQueue<Int, Int>(maxWeight: 1000, weigh: { _ in 1 })
        let sizes = Mutex<[Int]>([])
        let round: GroupCommitQueue<Int, Int>.Round = { take in
            let operations = take()
            sizes.withLock { $0.append(operations.count) }
            try? await Task.sleep(for: .milliseconds(20))
            return operations.map { .success($0) }
        }
        let clients = 8
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    for _ in 0..<10 { _ = try await queue.submit(client, round: round) }
                }
            }
            try await group.waitForAll()
        }
        let later = sizes.withLock { Array($0.dropFirst(3)) }
        #expect(later.filter { $0 == clients }.count * 2 > later.count, "round sizes: \(sizes.withLock { $0 })")
    }

    /// After a round, the next one waits for as many operations as there were clients, until the
    /// round's length has passed twice since it ended (or the maximum, if shorter); once that
    /// time has passed (an idle spell), it does not wait at all.
    @Test func theLingerIsBoundedByTwiceTheLastRound() {
        var random = SeededRandomNumberGenerator(seed: 0x11e6)
        let start = ContinuousClock.now
        for _ in 0..<1_000 {
            let ended = start + .microseconds(Int.random(in: 0...1_000_000, using: &random))
            let last = GroupCommitQueue<Int, Int>.LastRound(
                clients: Int.random(in: 1...64, using: &random), ended: ended, duration: .microseconds(Int.random(in: 1...20_000, using: &random)))
            let maxLinger = Duration.microseconds(Int.random(in: 1...10_000, using: &random))
            let bound = min(maxLinger, last.duration * 2)
            let now = ended + .microseconds(Int.random(in: 0...30_000, using: &random))
            let linger = GroupCommitQueue<Int, Int>.linger(after: last, now: now, maxLinger: maxLinger)
            if now - ended < bound {
                #expect(linger?.target == last.clients && linger?.deadline == ended + bound)
            } else {
                #expect(linger == nil)
            }
        }
    }

    /// A round takes its operations when it is ready (the coordinator: once it holds the cluster
    /// lock): those that arrive while it gets ready join it.
    @Test func operationsArrivingWhileARoundGetsReadyJoinIt() async throws {
        let queue = GroupCommitQueue<Int, Int>(maxWeight: 100, weigh: { _ in 1 })
        let sizes = Mutex<[Int]>([])
        let round: GroupCommitQueue<Int, Int>.Round = { take in
            try? await Task.sleep(for: .milliseconds(200))  // taking the lock
            let operations = take()
            sizes.withLock { $0.append(operations.count) }
            return operations.map { .success($0) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await queue.submit(0, round: round) }
            try await Task.sleep(for: .milliseconds(20))
            for operation in 1...5 { group.addTask { _ = try await queue.submit(operation, round: round) } }
            try await group.waitForAll()
        }
        #expect(sizes.withLock { $0 } == [6])
    }

    /// The coordinator keeps the cluster lock from one round to the next and lets go of it when
    /// the queue runs dry: `whenIdle` runs once per run of rounds, after its last round, never
    /// during one.
    @Test(.timeLimit(.minutes(1))) func whenIdleRunsOnceTheRoundsRunDry() async throws {
        let queue = GroupCommitQueue<Int, Int>(maxWeight: 4, weigh: { _ in 1 })
        let state = Mutex<(running: Bool, rounds: Int, idles: [Int], idleDuringARound: Bool)>((false, 0, [], false))
        let round: GroupCommitQueue<Int, Int>.Round = { take in
            state.withLock {
                $0.running = true
                $0.rounds += 1
            }
            let operations = take()
            try? await Task.sleep(for: .milliseconds(3))
            state.withLock { $0.running = false }
            return operations.map { .success($0) }
        }
        let (idled, idle) = AsyncStream<Void>.makeStream()
        let whenIdle: @Sendable () -> Void = {
            state.withLock {
                $0.idleDuringARound = $0.idleDuringARound || $0.running
                $0.idles.append($0.rounds)
            }
            idle.yield()
        }
        var idleEvents = idled.makeAsyncIterator()
        for burst in 0..<3 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for operation in 0..<20 { group.addTask { _ = try await queue.submit(operation, round: round, whenIdle: whenIdle) } }
                try await group.waitForAll()
            }
            // Every operation is answered before the runner finds the queue empty: wait for the
            // idle that follows the burst's last round.
            while state.withLock({ $0.idles.last != $0.rounds }) { await idleEvents.next() }
            let (rounds, idles) = state.withLock { ($0.rounds, $0.idles) }
            #expect(idles.count > burst && idles.last == rounds, "rounds \(rounds), idle after rounds \(idles)")
            #expect(rounds >= 5 * (burst + 1), "20 operations, at most 4 a round")
        }
        #expect(!state.withLock { $0.idleDuringARound })
    }

    @Test func anOperationHeavierThanTheLimitGetsARoundOfItsOwn() async throws {
        let queue = GroupCommitQueue<Int, Int>(maxWeight: 10, weigh: { $0 })
        let answer = try await queue.submit(50) { take in take().map { .success($0 + 1) } }
        #expect(answer == 51)
    }
}
