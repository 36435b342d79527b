import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One answer of the demo HTTP server.
public struct HTTPReply: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer?

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public init(status: HTTPResponseStatus, text: String) {
        self.init(status: status, body: ByteBuffer(string: text))
    }
}

/// What the server does with a request: answer it on the spot (a key this node holds, a miss), or
/// later, on the same event loop (a proxied key, a status page). `whenClientLeaves` is called if
/// the client's connection closes before the answer is ready (to stop work nobody will read).
public enum HTTPAnswer: Sendable {
    case now(HTTPReply)
    case later(EventLoopFuture<HTTPReply>, whenClientLeaves: (@Sendable () -> Void)? = nil)
}

/// The demo servers' HTTP/1.1 server on SwiftNIO (`NIOHTTP1`'s request decoder): each request is
/// answered on the event loop that read it, with no task or thread hop when the answer is at hand
/// (a local key in kv) — sequins' Go server answers a local key for about 20 µs of CPU, and a
/// general-purpose framework's per-request task and type conversions cost more than the lookup.
/// A request body is collected whole (at most `maxBody`, ``maxBody`` unless the server says
/// otherwise, else the `tooLarge` answer, a 413).
///
/// Every answer carries `Date` and `Content-Length`; connections are kept alive unless the client
/// asks otherwise. ``run(host:port:onBound:respond:)`` serves until the calling task is cancelled,
/// then stops accepting, closes idle connections at once and the rest once their answer is
/// written or after one second, as sequins' graceful shutdown does.
public enum HTTPServer {
    /// How long requests under way may finish after a shutdown begins.
    public static let shutdownGrace: TimeAmount = .seconds(1)
    /// The largest request body accepted.
    public static let maxBody = 16 << 20

    /// A request: its head, and its body if it had one.
    public typealias Respond = @Sendable (HTTPRequestHead, ByteBuffer?, any EventLoop) -> HTTPAnswer

    /// The answer to a body larger than the server takes (given that limit).
    public typealias TooLarge = @Sendable (Int) -> HTTPReply

    public static func run(
        host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        maxBody: Int = HTTPServer.maxBody,
        tooLarge: @escaping TooLarge = { HTTPReply(status: .payloadTooLarge, text: "the body is larger than \($0) bytes\n") },
        onBound: @escaping @Sendable (Int) -> Void = { _ in },
        respond: @escaping Respond
    ) async throws {
        let connections = Connections()
        let serverChannel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(respond: respond, connections: connections, maxBody: maxBody, tooLarge: tooLarge))
                }
            }
            .bind(host: host, port: port)
            .get()
        onBound(serverChannel.localAddress?.port ?? port)
        // Serve until cancelled (the channel closing by itself ends the wait too).
        let closed = serverChannel.closeFuture
        await withTaskCancellationHandler {
            _ = try? await closed.get()
        } onCancel: {
            serverChannel.close(promise: nil)
        }
        try? await serverChannel.close()
        await connections.shutDown(grace: shutdownGrace, logger: logger)
    }

    /// The open connections, for shutting them down (touched when a connection opens or closes,
    /// never per request).
    final class Connections: Sendable {
        private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

        func opened(_ channel: any Channel) {
            channels.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        }

        func closed(_ channel: any Channel) {
            _ = channels.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        }

        /// Asks every connection to quiesce (an idle one closes at once, a busy one after its
        /// answer), waits up to `grace`, then closes what is left.
        func shutDown(grace: TimeAmount, logger: Logger) async {
            for channel in channels.withLockedValue({ Array($0.values) }) {
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
            let deadline = NIODeadline.now() + grace
            while NIODeadline.now() < deadline, !channels.withLockedValue({ $0.isEmpty }) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            let remaining = channels.withLockedValue { Array($0.values) }
            if !remaining.isEmpty {
                logger.notice("closing connections whose answers were not done in time", metadata: ["kv.connections": "\(remaining.count)"])
            }
            for channel in remaining { channel.close(promise: nil) }
        }
    }

    /// One connection: decodes requests (NIO's `HTTPRequestDecoder`), answers them one at a time
    /// in the order they came (a pipelined request waits for the answer before it), and writes
    /// each answer as one buffer: status line, headers and body formatted here (`Date`,
    /// `Content-Length`, `Connection` for HTTP/1.0 keep-alive or a close). Formatting the answer
    /// in place costs a fraction of going through `HTTPResponseEncoder` and the pipelining helper,
    /// which measured about a tenth of a request's CPU with a local key.
    final class RequestHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = ByteBuffer

        private let respond: Respond
        private let connections: Connections
        // Only ever touched on the channel's event loop: no dynamic exclusivity checks per request.
        /// The request being received, and its body so far.
        @exclusivity(unchecked) private var receiving: HTTPRequestHead?
        @exclusivity(unchecked) private var body: ByteBuffer?
        /// The body is too large: answered 413 at its end, then the connection closes.
        @exclusivity(unchecked) private var tooLarge = false
        /// Whole requests waiting for the one being answered. Past ``maxWaiting`` of them, or once
        /// their bodies add up to `maxBody`, the connection is not read until they are answered
        /// (a client pipelining without end behind a slow answer does not fill memory).
        @exclusivity(unchecked) private var waiting = CircularBuffer<Waiting>(initialCapacity: 2)
        /// The bytes of the waiting requests' bodies.
        @exclusivity(unchecked) private var waitingBodyBytes = 0
        @exclusivity(unchecked) private var answering = false
        /// The waiting requests are being answered, one after another, further up the stack.
        @exclusivity(unchecked) private var draining = false
        /// Reading is paused until the waiting requests are answered.
        @exclusivity(unchecked) private var readingPaused = false
        /// Whether reading is paused (for tests).
        var isReadingPaused: Bool { readingPaused }
        /// An answer that closes the connection was written: nothing more is answered.
        @exclusivity(unchecked) private var closing = false
        /// What to call if the client leaves before the pending answer is ready.
        @exclusivity(unchecked) private var clientLeft: (@Sendable () -> Void)?
        static let maxWaiting = 1024

        /// A request waiting its turn, with its answer when it is known already (a body too large,
        /// answered and then the connection closed).
        struct Waiting {
            var head: HTTPRequestHead
            var body: ByteBuffer?
            var tooLarge: HTTPReply?
        }
        /// Close once idle (the server is shutting down).
        @exclusivity(unchecked) private var quiescing = false
        /// The `Date` header value, made once per second.
        @exclusivity(unchecked) private var date: (second: Int, text: String) = (0, "")

        private let maxBody: Int
        private let tooLargeReply: TooLarge

        init(respond: @escaping Respond, connections: Connections, maxBody: Int, tooLarge: @escaping TooLarge) {
            self.respond = respond
            self.connections = connections
            self.maxBody = maxBody
            self.tooLargeReply = tooLarge
        }

        func channelActive(context: ChannelHandlerContext) {
            connections.opened(context.channel)
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            connections.closed(context.channel)
            if let clientLeft {
                self.clientLeft = nil
                clientLeft()
            }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                receiving = head
                body = nil
                tooLarge = false
            case .body(var part):
                guard !tooLarge else { return }
                if (body?.readableBytes ?? 0) + part.readableBytes > maxBody {
                    tooLarge = true
                    body = nil
                } else if body == nil {
                    body = part
                } else {
                    body!.writeBuffer(&part)
                }
            case .end:
                guard let head = receiving else { return }
                receiving = nil
                let requestBody = body
                body = nil
                guard !closing else { return }  // after an answer that closes the connection
                if tooLarge {
                    let reply = tooLargeReply(maxBody)  // then the connection closes
                    if answering { wait(Waiting(head: head, tooLarge: reply), context: context) } else { write(reply, for: head, closing: true, context: context) }
                    return
                }
                if answering { wait(Waiting(head: head, body: requestBody), context: context) } else { answer(head, body: requestBody, context: context) }
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
            quiescing = true
            if !answering && receiving == nil { context.close(promise: nil) }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A request that is not HTTP/1.1: say so, then close (what NIO's error handler does).
            if error is HTTPParserError, !answering {
                var buffer = context.channel.allocator.buffer(capacity: 96)
                buffer.writeString("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }

        private func wait(_ request: Waiting, context: ChannelHandlerContext) {
            waiting.append(request)
            waitingBodyBytes += request.body?.readableBytes ?? 0
            if waiting.count >= Self.maxWaiting || waitingBodyBytes >= maxBody, !readingPaused {
                readingPaused = true
                try? context.channel.syncOptions?.setOption(.autoRead, value: false)
            }
        }

        /// Answers the waiting requests in order, in a loop rather than by recursion (an answer
        /// given at once would otherwise answer the next one a frame deeper, thousands deep
        /// behind one slow answer).
        private func answerWaiting(context: ChannelHandlerContext) {
            guard !draining else { return }
            draining = true
            defer { draining = false }
            while !answering && !closing, let next = waiting.popFirst() {
                waitingBodyBytes -= next.body?.readableBytes ?? 0
                if let reply = next.tooLarge {
                    answering = true  // as answer(…) does: write(…) ends it
                    write(reply, for: next.head, closing: true, context: context)
                } else {
                    answer(next.head, body: next.body, context: context)
                }
            }
            guard !answering && !closing else { return }
            if readingPaused {
                readingPaused = false
                try? context.channel.syncOptions?.setOption(.autoRead, value: true)
                context.read()
            }
            if quiescing && receiving == nil { context.close(promise: nil) }
        }

        private func answer(_ head: HTTPRequestHead, body: ByteBuffer?, context: ChannelHandlerContext) {
            answering = true
            switch respond(head, body, context.eventLoop) {
            case .now(let reply):
                write(reply, for: head, context: context)
            case .later(let future, let whenClientLeaves):
                clientLeft = whenClientLeaves
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                future.whenComplete { result in
                    let (handler, context) = loopBound.value
                    handler.clientLeft = nil
                    guard context.channel.isActive else { return }
                    switch result {
                    case .success(let reply): handler.write(reply, for: head, context: context)
                    case .failure: handler.write(HTTPReply(status: .internalServerError), for: head, context: context)
                    }
                }
            }
        }

        /// Writes `reply`; with `closing` (or when the request or the server's shutdown says so) it
        /// is the connection's last.
        private func write(_ reply: HTTPReply, for request: HTTPRequestHead, closing last: Bool = false, context: ChannelHandlerContext) {
            let keepAlive = request.isKeepAlive && !quiescing && !last
            let bodyLength = reply.body?.readableBytes ?? 0
            let inline = bodyLength <= 4096
            var buffer = context.channel.allocator.buffer(capacity: 160 + (inline ? bodyLength : 0))
            buffer.writeString(request.version.major == 1 && request.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            buffer.writeString(String(reply.status.code))
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(reply.status.reasonPhrase)
            buffer.writeStaticString("\r\n")
            for (name, value) in reply.headers {
                buffer.writeString(name)
                buffer.writeStaticString(": ")
                buffer.writeString(value)
                buffer.writeStaticString("\r\n")
            }
            buffer.writeStaticString("Date: ")
            buffer.writeString(currentDate())
            buffer.writeStaticString("\r\nContent-Length: ")
            buffer.writeString(String(bodyLength))
            if !keepAlive {
                buffer.writeStaticString("\r\nConnection: close")
            } else if request.version.major == 1 && request.version.minor == 0 {
                buffer.writeStaticString("\r\nConnection: keep-alive")
            }
            buffer.writeStaticString("\r\n\r\n")
            if let body = reply.body, bodyLength > 0 {
                if inline {
                    var body = body
                    buffer.writeBuffer(&body)
                } else {
                    context.write(wrapOutboundOut(buffer), promise: nil)
                    buffer = body
                }
            }
            answering = false
            guard keepAlive else {
                closing = true
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            answerWaiting(context: context)
        }

        private func currentDate() -> String {
            let now = time(nil)
            if Int(now) != date.second { date = (Int(now), HTTPDate.format(Date(timeIntervalSince1970: TimeInterval(now)))) }
            return date.text
        }
    }
}
