import Synchronization

/// The operations a member forwards to the coordinator, sent together when they come together:
/// the first one waiting schedules a send, and every operation submitted before that send starts
/// goes with it. Sends do not wait for each other (a coordinator round takes what has arrived
/// when it starts, so holding operations back for an earlier send to be answered would make them
/// miss a round).
///
/// A send lingers a little (at most ``maxLinger`` after the last answer, and never longer than the
/// last send took) until as many operations wait as were answered since the last send left: the
/// clients answered come back with their next operation within moments of each other, and a send
/// that left with the first of them would split them over several requests, each costing the
/// coordinator and the member an HTTP exchange. The coordinator's round lingers longer for the
/// same clients (``GroupCommitQueue``), so these operations still make its next round.
final class ForwardingOutbox<Operation: Sendable, Value: Sendable>: Sendable {
    /// Sends operations together: one result per operation, in order.
    typealias Send = @Sendable (_ operations: [Operation]) async -> [Result<Value, any Error>]

    private typealias Waiting = WaitingOperation<Operation, Value>
    private struct State {
        var waiting: [Waiting] = []
        var sendScheduled = false
        /// Operations answered since the last send took its batch: their clients are expected back.
        var expected = 0
        /// When the last answer came, and how long its send took.
        var lastAnswer: (at: ContinuousClock.Instant, took: Duration)?
        /// The scheduled send lingering until enough operations wait.
        var linger = LingerSlot()
    }
    private let state = Mutex(State())
    private let maxWeight: Int
    private let maxLinger: Duration
    private let weigh: @Sendable (Operation) -> Int

    /// How many sends lingered (for tests).
    var lingersBegun: Int { state.withLock { $0.linger.lingersBegun } }

    /// - Parameters:
    ///   - maxWeight: the most one send carries, by `weigh` (a heavier operation goes alone).
    ///   - maxLinger: the longest after an answer that a send waits for the clients answered.
    init(maxWeight: Int, maxLinger: Duration = .milliseconds(1), weigh: @escaping @Sendable (Operation) -> Int) {
        self.maxWeight = maxWeight
        self.maxLinger = maxLinger
        self.weigh = weigh
    }

    /// Sends `operation` with those submitted at about the same time (by `send`), and waits for
    /// its result. The send runs to its end even if the submitter is cancelled.
    func submit(_ operation: Operation, send: @escaping Send) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let (schedules, endsLinger) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                state.waiting.append(Waiting(operation: operation, weight: weigh(operation)) { continuation.resume(with: $0) })
                guard !state.sendScheduled else {
                    guard state.waiting.count >= state.expected else { return (false, nil) }
                    return (false, state.linger.take())
                }
                state.sendScheduled = true
                return (true, nil)
            }
            endsLinger?.resume()
            if schedules { Task { await self.sendWaiting(send) } }
        }
    }

    private func sendWaiting(_ send: @escaping Send) async {
        await lingerForTheClientsAnswered()
        let (batch, more) = state.withLock { state -> ([Waiting], Bool) in
            let batch = state.waiting.removeBatch(maxWeight: maxWeight)
            // Whoever was expected and has not come by now is not waited for again (a client
            // that stopped must not hold up the others' sends).
            state.expected = 0
            state.sendScheduled = !state.waiting.isEmpty
            return (batch, state.sendScheduled)
        }
        if more { Task { await self.sendWaiting(send) } }
        guard !batch.isEmpty else { return }
        let started = ContinuousClock.now
        let results = await send(batch.map(\.operation))
        precondition(results.count == batch.count, "a send answers every operation it carried")
        let answered = ContinuousClock.now
        state.withLock { state in
            state.expected += batch.count
            state.lastAnswer = (answered, answered - started)
        }
        for (waiting, result) in zip(batch, results) { waiting.deliver(result) }
    }

    /// Waits until as many operations wait as were answered since the last send left, or the
    /// linger is over. No wait when the last answer is older than that.
    private func lingerForTheClientsAnswered() async {
        let deadline = state.withLock { state -> ContinuousClock.Instant? in
            guard let last = state.lastAnswer else { return nil }
            return last.at + min(maxLinger, last.took)
        }
        guard let deadline, deadline > .now else { return }
        await LingerSlot.linger(
            until: deadline,
            register: { continuation in
                state.withLock { state in state.waiting.count < state.expected ? state.linger.hold(continuation) : nil }
            },
            expire: { id in self.state.withLock { $0.linger.take(ifID: id) } })
    }
}
