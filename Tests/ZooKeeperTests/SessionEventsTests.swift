import Testing

@testable import ZooKeeper

/// Session event streams and the client's lock: a stream cancelled while the client publishes a
/// state (here `closed`) must never deadlock. The runtime may run a cancelled stream's termination
/// handler while it holds the task's status lock, and a publish resumes the same task while it
/// holds the session lock; a termination handler that took the session lock deadlocked
/// `close()` about once in twenty shutdowns of a process following three streams.
@Suite(.timeLimit(.minutes(2))) struct SessionEventsTests {
    @Test func streamsCancelledWhileTheClientClosesNeverDeadlock() async throws {
        for round in 0..<3_000 {
            // Never started: close() publishes `closed` to the subscribers all the same.
            let client = try ZooKeeperClient(connectString: "127.0.0.1:1")
            let followers = (0..<4).map { _ in
                Task {
                    var seen = 0
                    for await _ in client.sessionEvents { seen += 1 }
                    return seen
                }
            }
            await Task.yield()
            async let closing: Void = client.close()
            for follower in followers { follower.cancel() }
            await closing
            for follower in followers { _ = await follower.value }
            #expect(client.state == .closed, "round \(round)")
        }
    }

    /// A stream that ends is forgotten: many short-lived subscriptions leave no subscriber behind.
    @Test func endedStreamsAreForgotten() async throws {
        let client = try ZooKeeperClient(connectString: "127.0.0.1:1")
        for _ in 0..<1_000 {
            var iterator = client.sessionEvents.makeAsyncIterator()
            _ = await iterator.next()
        }
        // The next step of the session forgets the ended ones.
        var last = client.sessionEvents.makeAsyncIterator()
        _ = await last.next()
        #expect(client.subscriberCount <= 2)
        await client.close()
    }
}
