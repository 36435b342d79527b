import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A loopback TCP proxy between a client and a server that can cut, blackhole and delay the
/// connections passing through it: how tests make network partitions.
///
/// ```swift
/// let proxy = try await FaultProxy.start(targetPort: server.port)
/// let client = try ZooKeeperClient(connectString: proxy.connectString)
/// proxy.blackhole()    // the client sees silence: suspended, then presumedExpired
/// proxy.restore()
/// ```
public final class FaultProxy: Sendable {
    /// What the proxy does with traffic.
    public enum Mode: Sendable, Equatable {
        /// Forward both ways.
        case pass
        /// Accept connections and keep them open, but drop every byte both ways (a silent partition).
        case blackhole
        /// Close every connection and close new ones at once (a refused partition).
        case refuse
        /// Forward both ways, each chunk after `delay`.
        case delay(Duration)
        /// Forward what clients send and drop what servers answer: requests are carried out, but
        /// their replies (and the server's pings) never arrive.
        case dropReplies
    }

    struct State {
        var mode: Mode = .pass
        var connections: [ObjectIdentifier: Channel] = [:]
    }

    /// The port clients connect to (127.0.0.1).
    public let port: Int
    /// Where the proxy forwards connections to.
    public let targetHost: String
    /// The port it forwards to.
    public let targetPort: Int
    let state: NIOLockedValueBox<State>
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: Channel

    /// `127.0.0.1:<port>`.
    public var connectString: String { "127.0.0.1:\(port)" }

    /// Starts a proxy on a free loopback port forwarding to `targetHost:targetPort`.
    public static func start(targetHost: String = "127.0.0.1", targetPort: Int) async throws -> FaultProxy {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = NIOLockedValueBox(State())
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                FaultProxy.accept(inbound, targetHost: targetHost, targetPort: targetPort, state: state)
            }
        do {
            let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
            return FaultProxy(
                port: channel.localAddress?.port ?? 0, targetHost: targetHost, targetPort: targetPort,
                state: state, group: group, serverChannel: channel)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private init(port: Int, targetHost: String, targetPort: Int, state: NIOLockedValueBox<State>,
                 group: MultiThreadedEventLoopGroup, serverChannel: Channel) {
        self.port = port
        self.targetHost = targetHost
        self.targetPort = targetPort
        self.state = state
        self.group = group
        self.serverChannel = serverChannel
    }

    /// The current mode.
    public var mode: Mode { state.withLockedValue { $0.mode } }

    /// Drops every byte both ways, keeping connections open (the client hears nothing).
    public func blackhole() { setMode(.blackhole, closeExisting: false) }

    /// Closes every connection and refuses (closes at once) new ones.
    public func cut() { setMode(.refuse, closeExisting: true) }

    /// Forwards with `delay` added to each chunk.
    public func delay(_ delay: Duration) { setMode(.delay(delay), closeExisting: false) }

    /// Forwards requests to the server but drops its replies: what a client sent happens, and the
    /// client never hears of it (then loses the connection for silence).
    public func dropReplies() { setMode(.dropReplies, closeExisting: false) }

    /// Forwards normally again. Connections that were blackholed or had replies dropped lost bytes
    /// mid-stream, so they are closed; the client reconnects through the proxy.
    public func restore() { setMode(.pass, closeExisting: mode == .blackhole || mode == .dropReplies) }

    /// The number of open client connections.
    public var connectionCount: Int { state.withLockedValue { $0.connections.count } }

    /// Closes every connection and stops listening.
    public func shutdown() async {
        setMode(.refuse, closeExisting: true)
        try? await serverChannel.close()
        try? await group.shutdownGracefully()
    }

    private func setMode(_ mode: Mode, closeExisting: Bool) {
        let toClose = state.withLockedValue { state -> [Channel] in
            state.mode = mode
            return closeExisting ? Array(state.connections.values) : []
        }
        for channel in toClose { channel.close(promise: nil) }
    }

    private static func accept(
        _ inbound: Channel, targetHost: String, targetPort: Int, state: NIOLockedValueBox<State>
    ) -> EventLoopFuture<Void> {
        let refuse = state.withLockedValue { state -> Bool in
            if state.mode == .refuse { return true }
            state.connections[ObjectIdentifier(inbound)] = inbound
            return false
        }
        if refuse { return inbound.close() }
        inbound.closeFuture.whenComplete { _ in
            _ = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(inbound)) }
        }
        let fromClient = ForwardingHandler(state: state, towardServer: true)
        let fromServer = ForwardingHandler(state: state, towardServer: false)
        fromClient.partner = nil
        do {
            try inbound.pipeline.syncOperations.addHandler(fromClient)
        } catch {
            return inbound.eventLoop.makeFailedFuture(error)
        }
        ClientBootstrap(group: inbound.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { outbound in
                do {
                    fromServer.partner = inbound
                    try outbound.pipeline.syncOperations.addHandler(fromServer)
                    return outbound.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return outbound.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: targetHost, port: targetPort)
            .whenComplete { result in
                switch result {
                case .success(let outbound):
                    fromClient.connected(to: outbound)
                    inbound.closeFuture.whenComplete { _ in outbound.close(promise: nil) }
                    outbound.closeFuture.whenComplete { _ in inbound.close(promise: nil) }
                case .failure:
                    inbound.close(promise: nil)
                }
            }
        return inbound.eventLoop.makeSucceededVoidFuture()
    }
}

/// Forwards what one side reads to the other, as the proxy's mode says.
private final class ForwardingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    let state: NIOLockedValueBox<FaultProxy.State>
    /// Whether this handler reads the client's side (and writes to the server).
    let towardServer: Bool
    var partner: Channel?
    private var pending: [ByteBuffer] = []

    init(state: NIOLockedValueBox<FaultProxy.State>, towardServer: Bool) {
        self.state = state
        self.towardServer = towardServer
    }

    /// Called on the event loop once the outbound connection exists: flushes what arrived before.
    func connected(to partner: Channel) {
        self.partner = partner
        for buffer in pending { forward(buffer) }
        pending.removeAll()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard partner != nil else {
            pending.append(buffer)
            return
        }
        forward(buffer)
    }

    private func forward(_ buffer: ByteBuffer) {
        guard let partner else { return }
        switch state.withLockedValue({ $0.mode }) {
        case .pass:
            partner.writeAndFlush(buffer, promise: nil)
        case .dropReplies where towardServer:
            partner.writeAndFlush(buffer, promise: nil)
        case .blackhole, .refuse, .dropReplies:
            break
        case .delay(let delay):
            partner.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay.components.seconds) * 1_000_000_000
                + delay.components.attoseconds / 1_000_000_000)) {
                partner.writeAndFlush(buffer, promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
