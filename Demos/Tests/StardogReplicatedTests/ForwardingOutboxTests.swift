import Synchronization
import Testing

@testable import StardogReplicated

/// A member's outbox to the coordinator: operations submitted together go in one send, each
/// submitter gets its own operation's result, a send carries at most its weight limit, and a
/// send does not wait for an earlier one to be answered.
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
    @Test func aSendDoesNotWaitForAnEarlierOne() async throws {
        let outbox = ForwardingOutbox<Int, Int>(maxWeight: 100, weigh: { _ in 1 })
        let secondAnswered = Mutex(false)
        let firstArrived = AsyncStream<Void>.makeStream()
        let send: ForwardingOutbox<Int, Int>.Send = { operations in
            if operations == [1] {
                // The first send is answered only once the second was (or after 10 s, if the
                // outbox held the second back).
                firstArrived.continuation.yield()
                let deadline = ContinuousClock.now + .seconds(10)
                while !secondAnswered.withLock({ $0 }), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
            }
            return operations.map { .success($0) }
        }
        async let first = outbox.submit(1, send: send)
        var arrivals = firstArrived.stream.makeAsyncIterator()
        await arrivals.next()
        #expect(try await outbox.submit(2, send: send) == 2)
        secondAnswered.withLock { $0 = true }
        #expect(try await first == 1)
    }
}
