import Foundation
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The queue against a real server: order, nothing lost when a consumer dies holding an item,
/// undecodable items handed out with an error naming them, and kazoo's layout.
@Suite struct DistributedQueueTests {
    @Test(.timeLimit(.minutes(1))) func itemsComeInPriorityThenArrivalOrderOnKazoosNodes() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let queue = DistributedQueue(client: client, path: path)
        for index in 0..<5 { try await queue.put([UInt8(index)]) }
        try await queue.put([99], priority: 5)
        #expect(try await queue.count() == 6)
        let names = try await client.getChildren(path + "/entries").names.sorted()
        #expect(names.first?.hasPrefix("entry-005-") == true && names.dropFirst().allSatisfy { $0.hasPrefix("entry-100-") })
        var taken: [UInt8] = []
        for _ in 0..<6 {
            let item = try await queue.take(timeout: .seconds(5))
            let held = try await client.getData(path + "/taken/" + item.name)
            #expect(held.string == queue.consumerID && held.stat.ephemeralOwner != 0, "kazoo's taken node: ephemeral, the consumer's id")
            #expect(queue.consumerID.count == 32 && queue.consumerID.allSatisfy(\.isHexDigit))
            taken += try item.value()
            try await item.consume()
        }
        #expect(taken == [99, 0, 1, 2, 3, 4])
        #expect(try await queue.count() == 0)
        do {
            _ = try await queue.take(timeout: .milliseconds(200))
            Issue.record("took from an empty queue")
        } catch let error as CoordinationError {
            #expect(error.code == .timedOut)
        }
        await #expect(throws: CoordinationError.self) { try await queue.put([1], priority: 1_000) }
        await client.close()
    }

    /// A consumer that dies between taking and consuming loses nothing: the item goes to another.
    @Test(.timeLimit(.minutes(1))) func anItemHeldByADeadConsumerIsTakenAgainAndConsumedOnce() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let producer = try await connectedTestClient(server.connectString)
        let dying = try await connectedTestClient(server.connectString)
        let surviving = try await connectedTestClient(server.connectString)
        let codec = JSONNodeCodec<[String: Int]>()
        try await DistributedQueue(client: producer, path: path, codec: codec).put(["job": 1])
        try await DistributedQueue(client: producer, path: path, codec: codec).put(["job": 2])

        let first = try await DistributedQueue(client: dying, path: path, codec: codec).take()
        #expect(try first.value() == ["job": 1])
        let other = DistributedQueue(client: surviving, path: path, codec: codec)
        let second = try await other.take()
        #expect(try second.value() == ["job": 2], "a held item is not handed out twice")
        try await dying.expireSessionForTesting()  // the consumer's session ends before it is done
        try await dying.waitUntilConnected()
        await #expect(throws: CoordinationError.self, "a consumer that lost its hold cannot consume") { try await first.consume() }
        let again = try await other.take(timeout: .seconds(10))
        #expect(try again.value() == ["job": 1])
        try await again.consume()
        try await second.release()
        let released = try await other.take(timeout: .seconds(5))
        #expect(try released.value() == ["job": 2], "a released item is offered again")
        try await released.consume()
        #expect(try await other.count() == 0)
        for client in [producer, dying, surviving] { await client.close() }
    }

    @Test(.timeLimit(.minutes(1))) func anUndecodableItemIsHandedOutWithAnErrorNamingIt() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let queue = DistributedQueue(client: client, path: path, codec: JSONNodeCodec<[String: Int]>())
        try await client.create(path + "/entries/entry-100-", data: Array("not json".utf8), mode: .persistentSequential, parents: .persistent)
        try await queue.put(["fine": 1])
        let bad = try await queue.take()
        do {
            _ = try bad.value()
            Issue.record("decoded garbage")
        } catch let error as ZooKeeperError {
            #expect(error.code == .marshallingError && error.path == path + "/entries/" + bad.name)
        }
        try await bad.consume()  // the consumer decides to drop it
        #expect(try await queue.take().value() == ["fine": 1])
        await client.close()
    }

    /// A take whose mark reaches the server but whose reply is lost fails; once the
    /// connection is back, the same consumer takes the item again and holds it: the clean-up of
    /// the first mark does not delete the second (it waits for the clean-up before taking the
    /// item), and another queue object on the same client is never the clean-up's victim.
    @Test(.timeLimit(.minutes(2))) func aTakeAfterALostMarkReplyHoldsTheItemAgainstTheCleanUp() async throws {
        try await withProxiedClient { proxy, client, observer, path in
            let queue = DistributedQueue(client: client, path: path)
            let other = DistributedQueue(client: client, path: path)
            try await DistributedQueue(client: observer, path: path).put(Array("only".utf8))
            try await observer.createPath(path + "/taken")
            let name = try #require(try await observer.getChildren(path + "/entries").names.first)
            proxy.dropReplies()
            // The take of that item (what take() does once it has listed the items): its mark is
            // made, the reply lost, and the client gives the connection up.
            await #expect(throws: ZooKeeperError.self) { _ = try await queue.lock(name) }
            // Until its clean-up is done, this consumer does not try that entry again.
            guard case .inHand = try await queue.lock(name) else { Issue.record("the entry was tried again during its clean-up"); return }
            #expect(try await observer.getChildren(path + "/taken").names == [name], "the mark reached the server")
            proxy.restore()
            let item = try await queue.take(timeout: .seconds(30))
            #expect(String(decoding: item.bytes, as: UTF8.self) == "only")
            // The take came after the clean-up ended (it passed the entry over until then).
            await #expect(throws: CoordinationError.self) { _ = try await other.take(timeout: .milliseconds(500)) }
            let marks = try await observer.getChildren(path + "/taken").names
            #expect(marks.count == 1, "the item is still marked taken: \(marks)")
            try await item.consume()
            #expect(try await DistributedQueue(client: observer, path: path).count() == 0)
        }
    }

    /// The clean-up of an unfinished take deletes a mark only if this consumer made it: another
    /// queue object on the same client (same session) that holds the item keeps it.
    @Test(.timeLimit(.minutes(1))) func theCleanUpOfAnUnfinishedTakeDeletesOnlyThisConsumersMark() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let queue = DistributedQueue(client: client, path: path)
        let other = DistributedQueue(client: client, path: path)
        try await queue.put([1])
        let held = try await other.take(timeout: .seconds(10))
        let mark = path + "/taken/" + held.name
        let session = try #require(client.state.session?.sessionID)
        await DistributedQueue<RawBytesCodec>.release(mark, ifMadeBy: queue.consumerID, in: session, client: client)
        #expect(try await client.exists(mark) != nil, "the other consumer's mark stays")
        try await held.release()
        let mine = try await queue.take(timeout: .seconds(10))
        await DistributedQueue<RawBytesCodec>.release(path + "/taken/" + mine.name, ifMadeBy: queue.consumerID, in: session, client: client)
        #expect(try await client.exists(path + "/taken/" + mine.name) == nil, "this consumer's mark is deleted")
        await client.close()
    }
}
