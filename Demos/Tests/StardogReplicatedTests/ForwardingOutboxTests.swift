import Synchronization
import Testing

@testable import StardogReplicated

/// A member's outbox to the coordinator: operations submitted together go in one send, each
/// submitter gets its own operation's result, a send carries at most its weight limit, a send
/// does not wait for an earlier one to be answered, and a send lingers for the clients just
/// answered (but not past its deadline, and not after an idle spell).
@Suite struct ForwardingOutboxTests {
    @Test func operationsSubmittedTogetherShareSendsAndEachGetsItsOwnAnswer() async throws {
        let outbox = ForwardingOutbox<Int, Int>(maxWeight: 8, weigh: { $0 % 3 + 1 })
        let sends = Mutex<[[Int]]>([])
        let send: ForwardingOutbox<Int, Int>.Send = { operations in
            sends.withLock { $0.append(operations) }
            try? await Task.sleep(for: .milliseconds(2))
            return operations.map { $0 % 5 == 0 ? .failure(ReplicatedError(.malformedRDF, "\($0)")) : .success($0 * 2) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for operation in 0..<200 {
                group.addTask {
                    do {
                        let answer = try await outbox.submit(operation, send: send)
                        #expect(answer == operation * 2 && operation % 5 != 0)
                    } catch let error as ReplicatedError {
                        #expect(operation % 5 == 0 && error.message == "\(operation)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let sent = sends.withLock { $0 }
        #expect(sent.flatMap { $0 }.sorted() == Array(0..<200))
        for operations in sent where operations.count > 1 {
            #expect(operations.map { $0 % 3 + 1 }.reduce(0, +) <= 8)
        }
        #expect(sent.count < 200, "no send carried more than one operation")
    }

    /// An operation that arrives while a send waits for its answer goes out at once, in a send of
    /// its own: the coordinator's next round may start before the earlier send is answered.
    /// (An outbox that held the second send back would never answer either: the time limit ends
    /// the test.)
    @Test(.timeLimit(.minutes(1))) func aSendDoesNotWaitForAnEarlierOne() async throws {
        let outbox = ForwardingOutbox<Int, Int>(maxWeight: 100, weigh: { _ in 1 })
        let firstArrived = AsyncStream<Void>.makeStream()
        let secondAnswered = AsyncStream<Void>.makeStream()
        let send: ForwardingOutbox<Int, Int>.Send = { operations in
            if operations == [1] {
                // The first send is answered only once the second was.
                firstArrived.continuation.yield()
                var answered = secondAnswered.stream.makeAsyncIterator()
                await answered.next()
            }
            return operations.map { .success($0) }
        }
        async let first = outbox.submit(1, send: send)
        var arrivals = firstArrived.stream.makeAsyncIterator()
        await arrivals.next()
        #expect(try await outbox.submit(2, send: send) == 2)
        secondAnswered.continuation.yield()
        #expect(try await first == 1)
    }

    /// Ten operations answered together (however many sends carried them); their clients come
    /// back one by one, a millisecond apart: one send carries all ten (without the linger, the
    /// first would leave alone).
    @Test func clientsAnsweredTogetherComeBackInOneSend() async throws {
        let outbox = ForwardingOutbox<Int, Int>(maxWeight: 1_000, maxLinger: .seconds(2), weigh: { _ in 1 })
        let sends = Mutex<[[Int]]>([])
        let send: ForwardingOutbox<Int, Int>.Send = { operations in
            sends.withLock { $0.append(operations) }
            // The first ten are answered together, once all of them were sent.
            while sends.withLock({ $0.joined().count(where: { $0 < 100 }) }) < 10 { try? await Task.sleep(for: .milliseconds(1)) }
            try? await Task.sleep(for: .seconds(1))
            return operations.map { .success($0) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for operation in 0..<10 {
                group.addTask {
                    _ = try await outbox.submit(operation, send: send)
                    try await Task.sleep(for: .milliseconds(20 + operation))
                    #expect(try await outbox.submit(operation + 100, send: send) == operation + 100)
                }
            }
            try await group.waitForAll()
        }
        let sent = sends.withLock { $0 }
        #expect(sent.flatMap { $0 }.sorted() == Array(0..<10) + Array(100..<110))
        #expect(sent.last?.sorted() == Array(100..<110), "the clients that came back were sent in \(sent)")
    }

    /// Only three of ten clients come back: the send leaves with them once the linger's deadline
    /// (the last send's duration, 2 s, not `maxLinger`: a linger of that would run past the time
    /// limit) has passed; and an operation after an idle spell goes without lingering. The sends
    /// take seconds so that a loaded machine's scheduling delays stay inside the linger's window.
    @Test(.timeLimit(.minutes(1))) func aLingerEndsAtItsDeadlineAndNotAfterAnIdleSpell() async throws {
        let outbox = ForwardingOutbox<Int, Int>(maxWeight: 1_000, maxLinger: .seconds(600), weigh: { _ in 1 })
        let sends = Mutex<[[Int]]>([])
        let send: ForwardingOutbox<Int, Int>.Send = { operations in
            sends.withLock { $0.append(operations) }
            try? await Task.sleep(for: .seconds(2))
            return operations.map { .success($0) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for operation in 0..<10 { group.addTask { _ = try await outbox.submit(operation, send: send) } }
            try await group.waitForAll()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for operation in 100..<103 { group.addTask { _ = try await outbox.submit(operation, send: send) } }
            try await group.waitForAll()
        }
        #expect(outbox.lingersBegun == 1, "the returning clients' send lingered for the seven missing")
        try await Task.sleep(for: .milliseconds(2_500))  // past the deadline
        _ = try await outbox.submit(200, send: send)
        #expect(outbox.lingersBegun == 1, "after an idle spell a send does not linger")
        let sent = sends.withLock { $0 }
        #expect(sent.suffix(2).map { $0.sorted() } == [[100, 101, 102], [200]], "sends: \(sent)")
    }

    /// Two clients answered together, and one of them stops: the first send of the other may
    /// linger for it, the later ones do not (each comes right after an answer, within the
    /// linger's window).
    @Test func aClientThatStoppedIsNotWaitedForAgain() async throws {
        let outbox = ForwardingOutbox<Int, Int>(maxWeight: 1_000, maxLinger: .seconds(30), weigh: { _ in 1 })
        let sent = Mutex(0)
        let send: ForwardingOutbox<Int, Int>.Send = { operations in
            // The first two are answered together, once both were sent.
            sent.withLock { $0 += operations.count }
            while sent.withLock({ $0 }) < 2 { try? await Task.sleep(for: .milliseconds(1)) }
            try? await Task.sleep(for: .milliseconds(200))
            return operations.map { .success($0) }
        }
        async let first = outbox.submit(0, send: send)
        async let second = outbox.submit(1, send: send)
        _ = try await (first, second)
        _ = try await outbox.submit(2, send: send)
        let afterFirst = outbox.lingersBegun
        #expect(afterFirst <= 1)
        for operation in 3..<6 { _ = try await outbox.submit(operation, send: send) }
        #expect(outbox.lingersBegun == afterFirst, "later sends lingered for a client that stopped")
    }
}
