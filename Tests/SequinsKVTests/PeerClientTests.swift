import DemoSupport
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import ZooKeeperTesting

@testable import SequinsKV

/// The proxy's HTTP client against real sockets: Hummingbird as the peer, and a raw TCP peer
/// that misbehaves on purpose (closes kept-alive connections, never answers).
@Suite(.timeLimit(.minutes(2))) struct PeerClientTests {
    /// One event loop, so every request shares one pool.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    @Test func sequentialRequestsReuseOneConnection() async throws {
        let port = try freeLoopbackPort()
        let server = Task { try await ConstantResponseServer.run(host: "127.0.0.1", port: port, body: "constant") }
        defer { server.cancel() }
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        try await eventually("the server is up", timeout: .seconds(30)) {
            (try? await client.get(peer: "127.0.0.1:\(port)", path: "/")) != nil
        }
        let before = client.connectionsOpened
        for index in 0..<20 {
            let answer = try await client.get(peer: "127.0.0.1:\(port)", path: "/key-\(index)?proxy=1")
            #expect(answer.status == 200)
            #expect(String(buffer: answer.body) == "constant")
        }
        #expect(client.connectionsOpened == before, "kept-alive connection reused")
    }

    @Test func aConnectionThePeerClosedIsReplaced() async throws {
        let peer = try await RawPeer.start(.answerThenClose)
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
        let peer = try await RawPeer.start(.neverAnswer)
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

    @Test func theStagedProxyRunsOnTheClient() async throws {
        let good = try await RawPeer.start(.answerThenClose)
        defer { good.stop() }
        let silent = try await RawPeer.start(.neverAnswer)
        defer { silent.stop() }
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        // The silent peer is asked first; its stage ends and the good one answers.
        let proxy = StagedProxy(totalTimeout: .seconds(60), stageTimeout: .milliseconds(100))
        let result = await proxy.run(
            peers: [silent.address, good.address], on: Self.group.next(),
            start: { client.request(peer: $0, path: "/db/key?proxy=v1") }, isGood: { $0.status == 200 })
        let (peer, answer) = try result.get()
        #expect(peer == good.address)
        #expect(String(buffer: answer.body) == "ok")
        try await eventually("the silent peer's request was cancelled", timeout: .seconds(30)) { silent.closedConnections == 1 }
    }
}

/// A TCP server that reads a request and answers (or not) as told.
final class RawPeer: Sendable {
    enum Behaviour: Sendable {
        /// Answers each request with 200 "ok" (no `Connection: close`), then closes the connection.
        case answerThenClose
        /// Reads requests and never answers.
        case neverAnswer
    }

    let channel: Channel
    let address: String
    private let counters: NIOLockedValueBox<(requests: Int, closed: Int)>

    var requestsSeen: Int { counters.withLockedValue { $0.requests } }
    var closedConnections: Int { counters.withLockedValue { $0.closed } }

    private init(channel: Channel, counters: NIOLockedValueBox<(requests: Int, closed: Int)>) {
        self.channel = channel
        self.counters = counters
        address = "127.0.0.1:\(channel.localAddress!.port!)"
    }

    static func start(_ behaviour: Behaviour) async throws -> RawPeer {
        let counters = NIOLockedValueBox((requests: 0, closed: 0))
        let channel = try await ServerBootstrap(group: PeerClientTests.group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawPeerHandler(behaviour: behaviour, counters: counters))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RawPeer(channel: channel, counters: counters)
    }

    func stop() { channel.close(promise: nil) }
}

private final class RawPeerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let behaviour: RawPeer.Behaviour
    let counters: NIOLockedValueBox<(requests: Int, closed: Int)>
    var received = ""

    init(behaviour: RawPeer.Behaviour, counters: NIOLockedValueBox<(requests: Int, closed: Int)>) {
        self.behaviour = behaviour
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        guard received.contains("\r\n\r\n") else { return }
        received = ""
        counters.withLockedValue { $0.requests += 1 }
        guard case .answerThenClose = behaviour else { return }
        let response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Sequins-Version: v1\r\n\r\nok"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        counters.withLockedValue { $0.closed += 1 }
    }
}
