import DemoTestSupport
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import ZooKeeperTesting

@testable import DemoSupport

/// The kept-alive client between nodes against real sockets: the demos' server as the peer, and a raw TCP peer
/// that misbehaves on purpose (closes kept-alive connections, never answers).
@Suite(.timeLimit(.minutes(2))) struct PeerClientTests {
    /// One event loop, so every request shares one pool.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// A client (on the one event loop) and the address of a server answering "constant" to
    /// everything, up and answered once.
    func withConstantServer(_ body: (PeerClient, String) async throws -> Void) async throws {
        let port = try freeLoopbackPort()
        let server = Task { try await ConstantResponseServer.run(host: "127.0.0.1", port: port, body: "constant") }
        defer { server.cancel() }
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        try await eventually("the server is up", timeout: .seconds(30)) {
            (try? await client.get(peer: "127.0.0.1:\(port)", path: "/")) != nil
        }
        try await body(client, "127.0.0.1:\(port)")
    }

    @Test func sequentialRequestsReuseOneConnection() async throws {
        try await withConstantServer { client, address in
            let before = client.connectionsOpened
            for index in 0..<20 {
                let answer = try await client.get(peer: address, path: "/key-\(index)?proxy=1")
                #expect(answer.status == 200)
                #expect(String(buffer: answer.body) == "constant")
            }
            #expect(client.connectionsOpened == before, "kept-alive connection reused")
        }
    }

    /// A cancel that comes after the answer (a deadline timer that fired late) does not close the
    /// connection, which is back in the pool: the next request reuses it.
    @Test func aCancelAfterTheAnswerLeavesThePooledConnectionAlone() async throws {
        try await withConstantServer { client, address in
            let before = client.connectionsOpened
            let pending = client.request(peer: address, path: "/first")
            #expect(try await pending.answer.get().status == 200)
            pending.cancel()
            let next = try await client.get(peer: address, path: "/second")
            #expect(next.status == 200)
            #expect(client.connectionsOpened == before, "the pooled connection was reused, not closed by the late cancel")
        }
    }

    @Test func aConnectionThePeerClosedIsReplaced() async throws {
        let peer = try await RawPeer.start(on: Self.group, .answerThenClose)
        defer { peer.stop() }
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        for _ in 0..<10 {
            let answer = try await client.get(peer: peer.address, path: "/db/key")
            #expect(answer.status == 200)
            #expect(String(buffer: answer.body) == "ok")
            #expect(answer.headers.first(name: "X-Sequins-Version") == "v1")
        }
        #expect(client.connectionsOpened == 10)
    }

    @Test func aRefusedConnectionFails() async throws {
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        // A port held by a socket that does not listen: connecting is refused, and no other
        // process of the test run can take the port meanwhile (a free port could be taken by a
        // server that then never answers an HTTP request, such as a ZooKeeper server).
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        await #expect(throws: (any Error).self) { try await client.get(peer: "127.0.0.1:\(port)", path: "/") }
    }

    @Test func aBadPeerAddressIsNamed() async throws {
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        await #expect(throws: PeerClient.Failure.invalidPeerAddress("no-port")) { try await client.get(peer: "no-port", path: "/") }
    }

    @Test func cancellingClosesTheConnection() async throws {
        let peer = try await RawPeer.start(on: Self.group, .neverAnswer)
        defer { peer.stop() }
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        let attempt = client.request(peer: peer.address, path: "/db/key")
        try await eventually("the peer got the request", timeout: .seconds(30)) { peer.requestsSeen > 0 }
        attempt.cancel()
        await #expect(throws: (any Error).self) { try await attempt.answer.get() }
        try await eventually("the peer saw the connection close", timeout: .seconds(30)) { peer.closedConnections == 1 }
    }

    @Test func afterShutdownRequestsFail() async throws {
        let client = PeerClient(group: Self.group)
        client.shutdown()
        await #expect(throws: PeerClient.Failure.shutDown) { try await client.get(peer: "127.0.0.1:1", path: "/") }
    }
}
