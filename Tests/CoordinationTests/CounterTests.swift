import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The shared counters: Curator's encodings as pure functions, then concurrent increments from
/// several sessions (none lost), corrupt values, and a session that expires in the middle.
@Suite struct CounterTests {
    @Test func theEncodingIsJavasByteBuffer() throws {
        var random = SeededRandomNumberGenerator(seed: 20)
        for _ in 0..<2_000 {
            let long = Int64.random(in: .min ... .max, using: &random)
            let bytes = try BigEndianCodec<Int64>().encode(long)
            #expect(bytes.count == 8)
            #expect(bytes == (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: long) >> (56 - 8 * UInt64($0))) })
            #expect(try BigEndianCodec<Int64>().decode(bytes) == long)
            let int = Int32.random(in: .min ... .max, using: &random)
            #expect(try BigEndianCodec<Int32>().decode(try BigEndianCodec<Int32>().encode(int)) == int)
        }
        #expect(try BigEndianCodec<Int32>().encode(1) == [0, 0, 0, 1])
        #expect(try BigEndianCodec<Int32>().encode(-2) == [0xFF, 0xFF, 0xFF, 0xFE])
        #expect(try BigEndianCodec<Int64>(emptyIsZero: true).decode([]) == 0)
        #expect(throws: BigEndianCodec<Int32>.WrongLength(expected: 4, found: 0)) { try BigEndianCodec<Int32>().decode([]) }
        #expect(throws: BigEndianCodec<Int64>.WrongLength(expected: 8, found: 3)) { try BigEndianCodec<Int64>().decode([1, 2, 3]) }
    }

    @Test(.timeLimit(.minutes(2))) func sharedCountLosesNoIncrementAcrossSessionsAndAnExpiry() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath() + "/count"
        let clients = try await (0..<4).asyncMap { _ in try await connectedTestClient(server.connectString) }
        let counts = clients.map { SharedCount(client: $0, path: path) }
        for count in counts { try await count.start() }
        var updates = counts[0].updates().makeAsyncIterator()
        guard case .value(0, _)? = try await updates.next() else { Issue.record("expected the seed 0 first"); return }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, count) in counts.enumerated() {
                group.addTask {
                    for step in 0..<50 {
                        if index == 1 && step == 25 { try await count.node.client.expireSessionForTesting() }
                        _ = try await count.node.client.withRetry(.untilSessionLost) { try await count.add(1) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await counts[3].get().value == 200)
        #expect(try await clients[0].getData(path).bytes == [0, 0, 0, 200])

        // A value of the wrong length is an error naming the node, in reads and in the stream.
        try await clients[0].setData(path, data: [1, 2, 3])
        do {
            _ = try await counts[2].get()
            Issue.record("read a 3-byte count")
        } catch let error as ZooKeeperError {
            #expect(error.code == .marshallingError && error.path == path)
        }
        var sawUndecodable = false
        while let update = try await updates.next() {
            if case .undecodable(let error) = update {
                #expect(error.path == path)
                sawUndecodable = true
                break
            }
        }
        #expect(sawUndecodable)
        for client in clients { await client.close() }
    }

    @Test(.timeLimit(.minutes(2)), arguments: [false, true])
    func atomicLongLosesNoIncrement(promoted: Bool) async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath() + (promoted ? "-promoted" : "")
        let clients = try await (0..<4).asyncMap { _ in try await connectedTestClient(server.connectString) }
        var impatient = RetryPolicy()
        impatient.maxAttempts = 1  // contention is the rule here: the promoted mode has to carry it
        let counters = clients.map {
            DistributedAtomicLong(client: $0, path: root + "/value", retryPolicy: promoted ? impatient : nil, promotedLockPath: promoted ? root + "/lock" : nil)
        }
        #expect(try await counters[0].get() == 0, "a missing node is 0")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, counter) in counters.enumerated() {
                group.addTask {
                    for step in 0..<40 {
                        if index == 2 && step == 20 { try await counter.node.client.expireSessionForTesting() }
                        while true {
                            let result = try await counter.node.client.withRetry(.untilSessionLost) { try await counter.increment() }
                            if result.succeeded {
                                #expect(result.postValue == result.preValue + 1)
                                break
                            }  // the tries ran out under contention: increment again
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await counters[1].get() == 160)

        #expect(try await counters[0].compareAndSet(expected: 7, 8).succeeded == false)
        #expect(try await counters[0].compareAndSet(expected: 160, -5).succeeded)
        #expect(try await counters[0].get() == -5)
        try await clients[0].setData(root + "/value", data: [9, 9])
        do {
            _ = try await counters[3].increment()
            Issue.record("incremented a 2-byte value")
        } catch let error as ZooKeeperError {
            #expect(error.code == .marshallingError && error.path == root + "/value")
        }
        #expect(try await clients[0].getData(root + "/value").bytes == [9, 9], "nothing written over a corrupt value")
        for client in clients { await client.close() }
    }
}

extension Sequence where Element: Sendable {
    /// `map` with an async transform, one element at a time.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
