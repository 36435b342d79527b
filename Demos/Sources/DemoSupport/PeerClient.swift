import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One request under way: its answer, and how to abandon it.
public struct PendingAnswer<Answer: Sendable>: Sendable {
    public var answer: EventLoopFuture<Answer>
    public var cancel: @Sendable () -> Void

    public init(answer: EventLoopFuture<Answer>, cancel: @escaping @Sendable () -> Void) {
        self.answer = answer
        self.cancel = cancel
    }
}

/// The client the demo servers use between their own nodes (kv's proxied key lookups, search's
/// broker asking its nodes, replicated's forwarding and two-phase commit): requests to a peer over kept-alive HTTP/1.1 connections, one request
/// at a time per connection, on the caller's own event loop (each loop keeps its own idle
/// connections per peer, so a request never leaves the thread that made it).
///
/// Why not AsyncHTTPClient: measured with wrk, a
/// proxied GET cost about 1.6× more CPU through it (its connection pool state machine, request
/// tracing, URL parsing and hops between loops), which kept proxied GETs at a quarter of the
/// constant-body baseline; this client does only what a node-to-node request needs.
public final class PeerClient: Sendable {
    public struct Answer: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: ByteBuffer
    }

    public enum Failure: Error, Sendable, Hashable {
        /// The peer address is not `host:port`.
        case invalidPeerAddress(String)
        /// The connection closed before a whole response arrived.
        case connectionClosed
        /// The client was shut down.
        case shutDown
        /// No answer within the time the caller gave (the connection was closed).
        case timedOut
    }

    private struct PoolKey: Hashable {
        var eventLoop: ObjectIdentifier
        var peer: String
    }

    private struct State {
        var idle: [PoolKey: [Channel]] = [:]
        var connectionsOpened = 0
        var shutDown = false
    }

    private let group: any EventLoopGroup
    private let connectTimeout: TimeAmount
    /// At most this many idle connections are kept per peer and event loop.
    private let maxIdlePerPeer: Int
    private let state = NIOLockedValueBox(State())

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, connectTimeout: TimeAmount = .seconds(1), maxIdlePerPeer: Int = 64) {
        self.group = group
        self.connectTimeout = connectTimeout
        self.maxIdlePerPeer = maxIdlePerPeer
    }

    /// `method path` on `peer` (`host:port`), with `body` (JSON unless `extraHeaders` give its
    /// `Content-Type`) if given and `extraHeaders` (`Accept`, …), answered on the caller's event
    /// loop. `cancel` closes the connection. A kept-alive connection that the peer closed meanwhile
    /// is replaced once (the requests between nodes are all safe to repeat).
    public func request(
        peer: String, method: HTTPMethod = .GET, path: String, body: ByteBuffer? = nil, extraHeaders: HTTPHeaders = [:]
    ) -> PendingAnswer<Answer> {
        let eventLoop = group.any()
        let key = PoolKey(eventLoop: ObjectIdentifier(eventLoop), peer: peer)
        var headers: HTTPHeaders = ["Host": peer]
        headers.add(contentsOf: extraHeaders)
        if let body {
            if !headers.contains(name: "Content-Type") { headers.add(name: "Content-Type", value: "application/json") }
            headers.add(name: "Content-Length", value: String(body.readableBytes))
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        let inUse = NIOLockedValueBox<(channel: Channel?, cancelled: Bool)>((nil, false))
        @Sendable func send(on channel: Channel) -> EventLoopFuture<Answer> {
            let cancelled = inUse.withLockedValue { inUse in
                inUse.channel = channel
                return inUse.cancelled
            }
            if cancelled {
                channel.close(promise: nil)
                return eventLoop.makeFailedFuture(CancellationError())
            }
            let promise = eventLoop.makePromise(of: PeerResponse.self)
            // A connection that closed before the request went out never reaches the handler:
            // the failed write fails the answer (a second completion is ignored).
            channel.writeAndFlush(PeerRequest(head: head, body: body, promise: promise)).whenFailure { _ in
                promise.fail(Failure.connectionClosed)
            }
            return promise.futureResult.map { response in
                // Answered: a late cancel (a timer that fired meanwhile) must not close the
                // connection, which goes back to the pool for other requests.
                inUse.withLockedValue { $0.channel = nil }
                self.giveBack(channel, key: key, reusable: response.keepAlive)
                return response.answer
            }
        }
        @Sendable func sendOnNewConnection() -> EventLoopFuture<Answer> {
            connect(peer: peer, on: eventLoop).flatMap { send(on: $0) }
        }
        let answer: EventLoopFuture<Answer>
        do {
            if let idle = try takeIdle(key) {
                answer = send(on: idle).flatMapError { error in
                    let retry = (error as? Failure) == .connectionClosed && !inUse.withLockedValue { $0.cancelled }
                    return retry ? sendOnNewConnection() : eventLoop.makeFailedFuture(error)
                }
            } else {
                answer = sendOnNewConnection()
            }
        } catch {
            answer = eventLoop.makeFailedFuture(error)
        }
        return PendingAnswer(answer: answer, cancel: {
            let channel = inUse.withLockedValue { inUse in
                inUse.cancelled = true
                return inUse.channel
            }
            channel?.close(promise: nil)
        })
    }

    /// ``request(peer:path:)`` awaited; cancelling the task closes the connection.
    public func get(peer: String, path: String) async throws -> Answer {
        try await send(peer: peer, path: path)
    }

    /// ``request(peer:method:path:body:extraHeaders:)`` awaited; cancelling the task closes the
    /// connection, and so does `timeout` (then ``Failure/timedOut`` is thrown).
    public func send(
        peer: String, method: HTTPMethod = .GET, path: String, body: ByteBuffer? = nil, extraHeaders: HTTPHeaders = [:],
        timeout: Duration? = nil
    ) async throws -> Answer {
        let attempt = request(peer: peer, method: method, path: path, body: body, extraHeaders: extraHeaders)
        let expired = NIOLockedValueBox(false)
        let timer = timeout.map { timeout in
            attempt.answer.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout / .nanoseconds(1)))) {
                expired.withLockedValue { $0 = true }
                attempt.cancel()
            }
        }
        defer { timer?.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await attempt.answer.get()
            } onCancel: {
                attempt.cancel()
            }
        } catch where expired.withLockedValue({ $0 }) {
            throw Failure.timedOut
        }
    }

    /// How many connections this client has opened (kept-alive ones are reused).
    public var connectionsOpened: Int { state.withLockedValue { $0.connectionsOpened } }

    /// Closes every idle connection; later requests fail with ``Failure/shutDown``.
    public func shutdown() {
        let channels = state.withLockedValue { state -> [Channel] in
            state.shutDown = true
            defer { state.idle = [:] }
            return state.idle.values.flatMap { $0 }
        }
        for channel in channels { channel.close(promise: nil) }
    }

    private func takeIdle(_ key: PoolKey) throws -> Channel? {
        try state.withLockedValue { state in
            if state.shutDown { throw Failure.shutDown }
            while let channel = state.idle[key]?.popLast() {
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    private func giveBack(_ channel: Channel, key: PoolKey, reusable: Bool) {
        let kept = reusable && channel.isActive && state.withLockedValue { state in
            guard !state.shutDown, state.idle[key, default: []].count < maxIdlePerPeer else { return false }
            state.idle[key, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    private func connect(peer: String, on eventLoop: any EventLoop) -> EventLoopFuture<Channel> {
        guard let colon = peer.lastIndex(of: ":"), let port = Int(peer[peer.index(after: colon)...]) else {
            return eventLoop.makeFailedFuture(Failure.invalidPeerAddress(peer))
        }
        let host = String(peer[..<colon])
        state.withLockedValue { $0.connectionsOpened += 1 }
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(PeerResponseHandler())
                }
            }
            .connect(host: host, port: port)
    }
}

/// One request on a connection and where its answer goes.
struct PeerRequest: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var promise: EventLoopPromise<PeerResponse>
}

struct PeerResponse: Sendable {
    var answer: PeerClient.Answer
    var keepAlive: Bool
}

/// Writes a ``PeerRequest`` and completes its promise with the whole response (or fails it when
/// the connection ends first).
final class PeerResponseHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = PeerRequest
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: EventLoopPromise<PeerResponse>?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        pending = request.promise
        head = nil
        body = nil
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let body = request.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            guard let head, let pending else { return }
            self.pending = nil
            let answer = PeerClient.Answer(status: Int(head.status.code), headers: head.headers, body: body ?? ByteBuffer())
            pending.succeed(PeerResponse(answer: answer, keepAlive: head.isKeepAlive))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(PeerClient.Failure.connectionClosed)
        context.fireChannelInactive()
    }

    private func fail(_ error: Error) {
        guard let pending else { return }
        self.pending = nil
        pending.fail(error)
    }
}
