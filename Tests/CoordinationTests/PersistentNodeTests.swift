import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The persistent node against a real server: re-created with its latest data after an expiry
/// and after a deletion, a TTL node kept through an expiry, its in-place state reported, gone
/// after close, and ended by an error that trying again cannot mend.
@Suite struct PersistentNodeTests {
    @Test(.timeLimit(.minutes(3))) func anEphemeralNodeIsKeptAcrossExpiriesWithItsLatestData() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath() + "/instance"
        let client = try await connectedTestClient(server.connectString)
        let observer = try await connectedTestClient(server.connectString)
        let node = PersistentNode(client: client, path: path, data: Array("v1".utf8))
        var states = node.states().makeAsyncIterator()
        #expect(try await states.next() == false)
        node.start()
        try await node.waitUntilInPlace()
        #expect(try await states.next() == true)
        #expect(try await observer.getData(path).string == "v1")

        try await node.setData(Array("v2".utf8))
        try await client.expireSessionForTesting()
        #expect(try await states.next() == false, "the node is reported gone with the session")
        #expect(try await states.next() == true)
        try await eventually("the node is re-created on the new session") {
            try await observer.exists(path)?.ephemeralOwner == client.state.session?.sessionID
        }
        let recreated = try await observer.getData(path)
        #expect(recreated.string == "v2", "re-created with the latest data")

        try await observer.delete(path)  // someone deletes it: it comes back
        try await eventually("the node is back") { try await observer.exists(path) != nil }
        await node.close()
        #expect(try await observer.exists(path) == nil, "close deletes it")
        #expect(try await states.next() == false)
        await client.close()
        await observer.close()
    }

    /// Another live session's node is at the path: `setData` leaves it alone, and the node this
    /// keeper creates once that one goes carries the data set meanwhile.
    @Test(.timeLimit(.minutes(1))) func setDataDoesNotWriteIntoAnotherSessionsNode() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath() + "/instance"
        let client = try await connectedTestClient(server.connectString)
        let other = try await connectedTestClient(server.connectString)
        try await other.create(path, data: Array("theirs".utf8), mode: .ephemeral, parents: .persistent)
        let node = PersistentNode(client: client, path: path, data: Array("v1".utf8))
        node.start()
        try await node.setData(Array("v2".utf8))
        #expect(try await other.getData(path).string == "theirs")
        #expect(!node.isInPlace)
        await other.close()  // their node goes with their session
        try await node.waitUntilInPlace()
        let observer = try await connectedTestClient(server.connectString)
        #expect(try await observer.getData(path).string == "v2")
        #expect(try await observer.exists(path)?.ephemeralOwner == client.state.session?.sessionID)
        await node.close()
        await client.close()
        await observer.close()
    }

    /// The keeper may learn of a new session, or of a deletion, only by creating the node (the old
    /// session expired, or someone deleted the node, between two of its requests): the node still
    /// went, and is reported so.
    @Test func aNodeTakenOverByANewSessionIsReportedGoneThenBack() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let node = PersistentNode(client: client, path: uniqueTestPath() + "/instance")
        var states = node.states().makeAsyncIterator()
        #expect(try await states.next() == false)
        node.setInPlace(owner: 0x1001)
        node.setInPlace(owner: 0x1001)  // looked again on the same session: nothing to report
        node.setInPlace(owner: 0x2002)
        node.setInPlace(owner: 0x2002, created: true)  // created again on the same session: it had gone
        await node.close()
        var seen: [Bool] = []
        while let inPlace = try await states.next() { seen.append(inPlace) }
        #expect(seen == [true, false, true, false, true, false])
        await client.close()
    }

    @Test(.timeLimit(.minutes(1))) func aTTLNodeIsCreatedWithItsTTL() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath() + "/ttl"
        let client = try await connectedTestClient(server.connectString)
        let node = PersistentNode(client: client, path: path, mode: .ttl(.seconds(30)), data: [7])
        node.start()
        try await node.waitUntilInPlace()
        let stat = try #require(try await client.exists(path))
        #expect(stat.ephemeralOwner == 0, "a TTL node belongs to no session")
        await node.close()
        #expect(try await client.exists(path) != nil, "a TTL node is left to expire")
        try await client.delete(path)
        await client.close()
    }

    /// A TTL node belongs to no session: an expiry leaves the same node in place (never reported
    /// gone), the latest data reaches it from the new session, and the keeper, now on the new
    /// session, creates it again when it is deleted and touches it.
    @Test(.timeLimit(.minutes(3))) func aTTLNodeIsKeptAcrossExpiriesWithItsLatestData() async throws {
        let server = try await ZooKeeperServer.shared()  // with extended types, as the test kit starts it
        let path = uniqueTestPath() + "/ttl"
        let client = try await connectedTestClient(server.connectString)
        let observer = try await connectedTestClient(server.connectString)
        let node = PersistentNode(client: client, path: path, mode: .ttl(.seconds(20)), data: Array("v1".utf8))
        var states = node.states().makeAsyncIterator()
        #expect(try await states.next() == false)
        node.start()
        try await node.waitUntilInPlace()
        #expect(try await states.next() == true)
        let created = try #require(try await observer.exists(path))
        #expect(created.ephemeralOwner == 0)

        try await client.expireSessionForTesting()
        try await node.setData(Array("v2".utf8))  // while the client opens its new session
        try await eventually("the latest data is written") { try await observer.getData(path).string == "v2" }
        #expect(try await observer.exists(path)?.czxid == created.czxid, "the same node: the expiry did not take it")
        let session = "0x" + String(UInt64(bitPattern: try #require(client.state.session?.sessionID)), radix: 16)
        try await eventually("the keeper watches the node from its new session") {
            let blocks = try await server.fourLetterWord("wchc").components(separatedBy: "0x").map { "0x" + $0 }
            return blocks.contains { $0.hasPrefix(session) && $0.contains(path) }
        }

        try await observer.delete(path)  // someone deletes it: it comes back, with the latest data
        try await eventually("the node is back") { try await observer.exists(path).map { $0.czxid != created.czxid } ?? false }
        #expect(try await observer.getData(path).string == "v2")
        let (_, touch) = try await observer.getDataAndWatch(path)
        #expect(try await touch.triggered().kind == .nodeDataChanged, "touched every half TTL")
        #expect(try await observer.getData(path).string == "v2")
        await node.close()
        #expect(try await observer.exists(path) != nil, "a TTL node is left to expire")
        var seen: [Bool] = []
        while let inPlace = try await states.next() { seen.append(inPlace) }
        #expect(seen == [false, true, false], "reported gone when deleted and when closed, never because of the expiry")
        try await observer.delete(path)
        await client.close()
        await observer.close()
    }

    /// An invalid path ends the keeping at once: the states report the node not in place, then
    /// throw the error naming the path; waiting throws it too, as does a later subscription.
    @Test(.timeLimit(.minutes(1))) func anInvalidPathEndsTheKeepingWithTheError() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath() + "//instance"
        let node = PersistentNode(client: client, path: path)
        var states = node.states().makeAsyncIterator()
        #expect(try await states.next() == false)
        node.start()
        let error = await #expect(throws: ZooKeeperError.self) { try await node.waitUntilInPlace() }
        #expect(error?.code == .invalidPath && error?.path == path, "\(String(describing: error))")
        await #expect(throws: ZooKeeperError.self) { _ = try await states.next() }
        var later = node.states().makeAsyncIterator()
        #expect(try await later.next() == false)
        await #expect(throws: ZooKeeperError.self) { _ = try await later.next() }
        #expect(!node.isInPlace)
        await node.close()
        await #expect(throws: CoordinationError.self) { try await node.waitUntilInPlace() }
        await client.close()
    }

    /// A TTL node on a server without extended types: the server refuses it as unimplemented, and
    /// that ends the keeping instead of a create tried again without end.
    @Test(.timeLimit(.minutes(2))) func aTTLNodeOnAServerWithoutTTLSupportEndsTheKeeping() async throws {
        var configuration = ZooKeeperServer.Configuration()
        configuration.extendedTypesEnabled = false
        let server = try await ZooKeeperServer.start(configuration: configuration)
        defer { server.destroy() }
        let client = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath() + "/ttl"
        let node = PersistentNode(client: client, path: path, mode: .ttl(.seconds(30)))
        node.start()
        let error = await #expect(throws: ZooKeeperError.self) { try await node.waitUntilInPlace() }
        #expect(error?.code == .unimplemented, "\(String(describing: error))")
        #expect(try await client.exists(path) == nil)
        await node.close()
        await client.close()
    }
}
