import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP server that reads an HTTP request and answers (or not) as told: a peer that misbehaves
/// on purpose, for the tests of clients and proxies.
public final class RawPeer: Sendable {
    /// What the peer does with a request.
    public enum Behaviour: Sendable {
        /// Answers each request with 200 "ok" (no `Connection: close`), then closes the connection.
        case answerThenClose
        /// Reads requests and never answers.
        case neverAnswer
    }

    let channel: Channel
    /// `127.0.0.1:<port>`.
    public let address: String
    private let counters: NIOLockedValueBox<(requests: Int, closed: Int)>

    /// How many requests the peer has read.
    public var requestsSeen: Int { counters.withLockedValue { $0.requests } }
    /// How many connections have closed.
    public var closedConnections: Int { counters.withLockedValue { $0.closed } }

    private init(channel: Channel, counters: NIOLockedValueBox<(requests: Int, closed: Int)>) {
        self.channel = channel
        self.counters = counters
        address = "127.0.0.1:\(channel.localAddress!.port!)"
    }

    /// Listens on a free loopback port of `group`.
    public static func start(on group: any EventLoopGroup, _ behaviour: Behaviour) async throws -> RawPeer {
        let counters = NIOLockedValueBox((requests: 0, closed: 0))
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawPeerHandler(behaviour: behaviour, counters: counters))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RawPeer(channel: channel, counters: counters)
    }

    /// Stops listening.
    public func stop() { channel.close(promise: nil) }
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
