import Synchronization
import Testing
import ZooKeeper
import ZooKeeperTesting

/// Tasks that prefer the completion executor run between replies on the C client's completion
/// thread: the results, errors, cancellation and streams are what they are without it.
@Suite struct CompletionExecutorTests {
    @Test(.timeLimit(.minutes(1))) func requestsErrorsAndCancellationBehaveAsOnThePool() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path, data: Array("0".utf8))
            try await withTaskExecutorPreference(ZooKeeperClient.completionExecutor) {
                for value in 1...200 {
                    try await client.setData(path, data: Array("\(value)".utf8))
                    #expect(try await client.getData(path).string == "\(value)")
                }
                await expectError(.noNode) { try await client.getData(path + "/missing") }
                // Many tasks at once, all on the completion thread between replies.
                try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<100 { group.addTask { try await client.getData(path).string } }
                    for try await value in group { #expect(value == "200") }
                }
            }
            // A waiting task that is cancelled ends with CancellationError at once.
            let waiting = Task(executorPreference: ZooKeeperClient.completionExecutor) {
                let (_, watch) = try await client.getDataAndWatch(path)
                _ = try await watch.triggered()
            }
            try await Task.sleep(for: .milliseconds(100))
            waiting.cancel()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            try await client.delete(path)
        }
    }

    @Test(.timeLimit(.minutes(1))) func aStreamConsumedOnTheCompletionExecutorFollowsTheNode() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path, data: Array("a".utf8))
            let seen = try await withTaskExecutorPreference(ZooKeeperClient.completionExecutor) {
                var updates = client.dataUpdates(path).makeAsyncIterator()
                var seen: [String] = []
                while let update = try await updates.next() {
                    guard case .data(let node) = update else { continue }
                    seen.append(node.string)
                    if node.string == "c" { break }
                    try await client.setData(path, data: Array(node.string == "a" ? "b".utf8 : "c".utf8))
                }
                return seen
            }
            #expect(seen == ["a", "b", "c"])
            try await client.delete(path)
        }
    }
}
