import Foundation
import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing
import ZooKeeperTesting

@testable import DemoSupport

/// The demos' HTTP/1.1 server with a raw socket as the client: answers in order, keep-alive rules,
/// a request that is not HTTP.
@Suite(.timeLimit(.minutes(1))) struct HTTPServerTests {
    /// Runs a server whose answer names the path; a path under /slow/ answers 50 ms later (so a
    /// pipelined request after it must wait).
    func withServer(_ body: (Int) async throws -> Void) async throws {
        let port = try freeLoopbackPort()
        let server = Task {
            try await HTTPServer.run(host: "127.0.0.1", port: port, logger: Logger(label: "test")) { head, body, eventLoop in
                if let body { return .now(HTTPReply(status: .ok, body: ByteBuffer(string: "got \(body.readableBytes) bytes"))) }
                let reply = HTTPReply(status: .ok, headers: ["X-Path": head.uri], body: ByteBuffer(string: "answer for \(head.uri)"))
                guard head.uri.hasPrefix("/slow/") else { return .now(reply) }
                return .later(eventLoop.scheduleTask(in: .milliseconds(50)) { reply }.futureResult)
            }
        }
        defer { server.cancel() }
        try await eventually("the server listens", timeout: .seconds(10)) {
            (try? await exchange(port: port, "GET /up HTTP/1.1\r\nConnection: close\r\n\r\n")) != nil
        }
        try await body(port)
    }

    /// Sends `request` on a new connection and reads until the server closes it or `expected`
    /// came (blocking socket calls, on a thread of their own).
    func exchange(port: Int, _ request: String, until expected: String? = nil) async throws -> String {
        try await runOffPool { try Self.blockingExchange(port: port, request, until: expected) }
    }

    static func blockingExchange(port: Int, _ request: String, until expected: String?, receiveTimeout: Int = 5) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { throw ZooKeeperTestingError("cannot connect") }
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[0..<count]
            if let expected, String(decoding: received, as: UTF8.self).contains(expected) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withServer { port in
            let text = try await exchange(port: port, "GET /slow/1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\nConnection: close\r\n\r\n")
            let order = ["answer for /slow/1", "answer for /2", "answer for /3"].map { text.range(of: $0)?.lowerBound }
            #expect(order.allSatisfy { $0 != nil } && order[0]! < order[1]! && order[1]! < order[2]!, "\(text)")
            #expect(text.contains("Content-Length: 18\r\n") && text.contains("Date: "))
            #expect(text.hasSuffix("Connection: close\r\n\r\nanswer for /3"), "the last answer closes: \(text)")
        }
    }

    /// Thousands of requests pipelined behind a slow one wait (the connection is not read past a
    /// thousand waiting) and are then answered in order, one after another rather than each a
    /// stack frame deeper; a body too large among them still gets its 413.
    @Test func thousandsOfPipelinedRequestsBehindASlowOneAreAnsweredInOrder() async throws {
        try await withServer { port in
            let count = 30_000
            var request = "GET /slow/first HTTP/1.1\r\n\r\n"
            for index in 0..<count { request += "GET /p\(index) HTTP/1.1\r\n\r\n" }
            request += "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"
            let text = try await exchange(port: port, request)
            let paths = text.components(separatedBy: "X-Path: ").dropFirst().map { $0.prefix { !$0.isNewline } }
            #expect(paths.count == count + 2, "\(paths.count) answers")
            #expect(paths.elementsEqual(["/slow/first"] + (0..<count).map { "/p\($0)" } + ["/last"]), "in order")
        }
    }

    @Test func aTooLargeBodyWaitingBehindASlowAnswerStillGets413() async throws {
        try await withServer { port in
            let large = String(repeating: "x", count: HTTPServer.maxBody + 1)
            let text = try await exchange(
                port: port, "GET /slow/1 HTTP/1.1\r\n\r\nPOST /big HTTP/1.1\r\nContent-Length: \(large.utf8.count)\r\n\r\n\(large)")
            #expect(text.contains("answer for /slow/1") && text.contains("413"), "\(text.prefix(400))")
            #expect(!text.contains("got "), "the large body was not answered as if it were a request")
        }
    }

    /// Requests with bodies pipelined behind a slow answer: reading pauses once their bodies add
    /// up to the largest body the server takes (not only past a thousand requests), and resumes
    /// once they are answered, every one of them in order.
    @Test func waitingBodiesPauseReadingOnceTheyAddUpToTheLimit() throws {
        let channel = EmbeddedChannel()
        let slow = channel.eventLoop.makePromise(of: HTTPReply.self)
        let handler = HTTPServer.RequestHandler(
            respond: { head, body, _ in
                head.uri == "/slow" ? .later(slow.futureResult) : .now(HTTPReply(status: .ok, text: "\(head.uri) \(body?.readableBytes ?? 0)"))
            },
            connections: HTTPServer.Connections(), maxBody: 1_000, tooLarge: { _ in HTTPReply(status: .payloadTooLarge) })
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\n\r\n"))
        func post(_ index: Int) -> ByteBuffer {
            ByteBuffer(string: "POST /p\(index) HTTP/1.1\r\nContent-Length: 400\r\n\r\n" + String(repeating: "a", count: 400))
        }
        try channel.writeInbound(post(1))
        try channel.writeInbound(post(2))
        #expect(!handler.isReadingPaused, "800 bytes wait")
        try channel.writeInbound(post(3))
        #expect(handler.isReadingPaused, "1,200 bytes wait: past the 1,000 the server takes")
        slow.succeed(HTTPReply(status: .ok, text: "slow"))
        #expect(!handler.isReadingPaused, "every waiting request was answered")
        var answers = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { answers += String(buffer: buffer) }
        let bodies = ["slow", "/p1 400", "/p2 400", "/p3 400"].map { answers.range(of: $0)?.lowerBound }
        #expect(bodies.allSatisfy { $0 != nil } && bodies == bodies.sorted { $0! < $1! }, "\(answers)")
        _ = try channel.finish()
    }

    /// A client that leaves before its answer is ready is told to the answer's maker (kv stops
    /// proxying for it), and the answer that comes later is not written anywhere.
    @Test func aClientLeavingBeforeItsAnswerIsReported() async throws {
        let port = try freeLoopbackPort()
        let left = NIOLockedValueBox(false)
        let pending = NIOLockedValueBox<EventLoopPromise<HTTPReply>?>(nil)
        let server = Task {
            try await HTTPServer.run(host: "127.0.0.1", port: port, logger: Logger(label: "test")) { head, _, eventLoop in
                guard head.uri == "/never" else { return .now(HTTPReply(status: .ok)) }
                let promise = eventLoop.makePromise(of: HTTPReply.self)
                pending.withLockedValue { $0 = promise }
                return .later(promise.futureResult, whenClientLeaves: { left.withLockedValue { $0 = true } })
            }
        }
        defer { server.cancel() }
        try await eventually("the server listens", timeout: .seconds(10)) {
            (try? await exchange(port: port, "GET /up HTTP/1.1\r\nConnection: close\r\n\r\n")) != nil
        }
        // The exchange gives up after its receive timeout and closes the connection.
        _ = try? await runOffPool { try Self.blockingExchange(port: port, "GET /never HTTP/1.1\r\n\r\n", until: "never comes", receiveTimeout: 1) }
        try await eventually("the server heard the client leave", timeout: .seconds(5)) { left.withLockedValue { $0 } }
        pending.withLockedValue { $0 }?.succeed(HTTPReply(status: .ok))  // written nowhere, and nothing breaks
    }

    @Test func http10GetsKeepAliveOnlyWhenItAsks() async throws {
        try await withServer { port in
            let closing = try await exchange(port: port, "GET /a HTTP/1.0\r\n\r\n")
            #expect(closing.hasPrefix("HTTP/1.0 200 OK\r\n") && closing.contains("Connection: close"), "\(closing)")
            let kept = try await exchange(port: port, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", until: "answer for /b")
            #expect(kept.contains("Connection: keep-alive"), "\(kept)")
        }
    }

    @Test func aBodyIsCollectedWholeAndATooLargeOneIs413() async throws {
        try await withServer { port in
            let chunked = try await exchange(port: port, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            #expect(chunked.hasSuffix("got 11 bytes"), "\(chunked)")
            let size = HTTPServer.maxBody + 1
            let large = try await exchange(port: port, "POST /x HTTP/1.1\r\nContent-Length: \(size)\r\n\r\n" + String(repeating: "a", count: size))
            #expect(large.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n") && large.contains("Connection: close"), "\(large.prefix(200))")
        }
    }

    @Test func aRequestThatIsNotHTTPGets400AndTheConnectionCloses() async throws {
        try await withServer { port in
            let text = try await exchange(port: port, "this is not HTTP\r\n\r\n")
            #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text)")
        }
    }
}
