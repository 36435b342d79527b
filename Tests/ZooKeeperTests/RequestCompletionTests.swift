import Testing

@testable import ZooKeeper

/// What a request fails with when the C client completes it with a code that only says it was
/// cut off: the reason its handle was closed for, never `.closed` after an expiry. The C
/// completion functions are called directly, as the C client's completion thread calls them.
@Suite struct RequestCompletionTests {
    // The C client's codes (zookeeper.h), as the completion thread passes them.
    static let ZCLOSING: Int32 = -116
    static let ZCONNECTIONLOSS: Int32 = -4
    static let ZINVALIDSTATE: Int32 = -9
    /// What every request in flight fails with when the C client drops the connection after a
    /// reply it did not expect.
    static let ZRUNTIMEINCONSISTENCY: Int32 = -2
    static let ZNONODE: Int32 = -101

    /// One kind of completion: hands `code` and the retained box to the C trampoline of that kind.
    struct Completion: Sendable, CustomStringConvertible {
        var description: String
        var run: @Sendable (Int32, InFlightRequests, Int) async -> Result<Void, ZooKeeperError>
    }

    /// Submits a box of `Value` on `generation`, completes it through `trampoline`, awaits it.
    static func complete<Value: Sendable>(
        _ code: Int32, inFlight: InFlightRequests, generation: Int, as: Value.Type,
        _ trampoline: (Int32, UnsafeRawPointer) -> Void
    ) async -> Result<Void, ZooKeeperError> {
        let box = RequestBox<Value>(path: "/cut/off", inFlight: inFlight)
        inFlight.insert(box, generation: generation)
        trampoline(code, UnsafeRawPointer(Unmanaged.passRetained(box).toOpaque()))
        do {
            _ = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Value, any Error>) in
                _ = box.install(continuation)
            }
            return .success(())
        } catch let error as ZooKeeperError {
            return .failure(error)
        } catch {
            Issue.record("unexpected \(error)")
            return .success(())
        }
    }

    static let completions: [Completion] = [
        Completion(description: "void") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: Void.self) { voidCompletion($0, $1) }
        },
        Completion(description: "stat") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: Stat.self) { statCompletion($0, nil, $1) }
        },
        Completion(description: "exists") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: Stat?.self) { existsCompletion($0, nil, $1) }
        },
        Completion(description: "data") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: NodeData.self) { dataCompletion($0, nil, 0, nil, $1) }
        },
        Completion(description: "children") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: NodeChildren.self) { childrenCompletion($0, nil, nil, $1) }
        },
        Completion(description: "create") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: CreatedNode.self) { createCompletion($0, nil, nil, $1) }
        },
        Completion(description: "sync") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: Void.self) { syncCompletion($0, nil, $1) }
        },
        Completion(description: "multi") { code, inFlight, generation in
            await complete(code, inFlight: inFlight, generation: generation, as: [MultiResult].self) { multiCompletion($0, $1) }
        },
    ]

    @Test(arguments: completions)
    func aRequestCutOffWhileAnExpiredHandleClosesFailsWithSessionExpired(_ completion: Completion) async {
        let inFlight = InFlightRequests()
        inFlight.handleClosing(generation: 3, reason: ZooKeeperError(.sessionExpired, message: "the session expired"))
        for code in [Self.ZCLOSING, Self.ZCONNECTIONLOSS, Self.ZINVALIDSTATE, Self.ZRUNTIMEINCONSISTENCY] {
            let result = await completion.run(code, inFlight, 3)
            guard case .failure(let error) = result else {
                Issue.record("\(completion) with \(code) succeeded")
                continue
            }
            #expect(error.code == .sessionExpired, "\(completion) with C code \(code) gave \(error)")
            #expect(error.rawCode == code, "the C client's code stays in rawCode")
        }
        #expect(inFlight.count == 0)
    }

    @Test(arguments: completions)
    func onlyAHandleClosedByCloseGivesClosed(_ completion: Completion) async {
        let inFlight = InFlightRequests()
        inFlight.handleClosing(generation: 1, reason: .closed())
        let closing = await completion.run(Self.ZCLOSING, inFlight, 1)
        #expect(closing.failure?.code == .closed)
        // Another generation of the same client, not being closed: a connection loss stays one.
        let lost = await completion.run(Self.ZCONNECTIONLOSS, inFlight, 2)
        #expect(lost.failure?.code == .connectionLoss)
    }

    /// The C client drops the connection after a reply it did not expect (a server leaving the
    /// ensemble sent one) and fails what was in flight with `ZRUNTIMEINCONSISTENCY`: for the caller
    /// that is a lost connection on a session that lives on, so it is retried like one.
    @Test(arguments: completions)
    func aConnectionDroppedAfterAnUnexpectedReplyIsAConnectionLoss(_ completion: Completion) async {
        let result = await completion.run(Self.ZRUNTIMEINCONSISTENCY, InFlightRequests(), 1)
        #expect(result.failure?.code == .connectionLoss)
        #expect(result.failure?.rawCode == Self.ZRUNTIMEINCONSISTENCY)
        #expect(result.failure?.isRetryable == true)
    }

    @Test func aServersAnswerIsKeptWhileTheHandleCloses() async {
        let inFlight = InFlightRequests()
        inFlight.handleClosing(generation: 5, reason: ZooKeeperError(.sessionExpired, message: "the session expired"))
        let answer = await Self.completions[0].run(Self.ZNONODE, inFlight, 5)
        #expect(answer.failure?.code == .noNode)
    }

    @Test func abandonedRequestsFailWithTheReasonAndTheReasonIsForgottenAfterwards() async throws {
        let inFlight = InFlightRequests()
        let box = RequestBox<Void>(path: "/abandoned", inFlight: inFlight)
        inFlight.insert(box, generation: 7)
        _ = Unmanaged.passRetained(box)  // the reference the C client would hold
        let expired = ZooKeeperError(.sessionExpired, message: "the session expired")
        inFlight.handleClosing(generation: 7, reason: expired)
        inFlight.abandonAll(generation: 7, with: expired)
        await #expect(throws: expired.withPath("/abandoned")) {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                _ = box.install(continuation)
            }
        }
        // After zookeeper_close returned, generation 7's reason is no longer kept.
        let late = ZooKeeperError(rawCode: Self.ZCONNECTIONLOSS, path: nil)
        #expect(inFlight.translate(late, generation: 7) == late)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

extension ZooKeeperError {
    fileprivate func withPath(_ path: String) -> ZooKeeperError {
        var error = self
        error.path = path
        return error
    }
}
