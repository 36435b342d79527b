import Synchronization

/// The operations a member forwards to the coordinator, sent together when they come together:
/// the first one waiting schedules a send, and every operation submitted before that send starts
/// goes with it. Sends do not wait for each other (a coordinator round takes what has arrived
/// when it starts, so holding operations back for an earlier send to be answered would make them
/// miss a round).
final class ForwardingOutbox<Operation: Sendable, Value: Sendable>: Sendable {
    /// Sends operations together: one result per operation, in order.
    typealias Send = @Sendable (_ operations: [Operation]) async -> [Result<Value, any Error>]

    private typealias Waiting = WaitingOperation<Operation, Value>
    private struct State {
        var waiting: [Waiting] = []
        var sendScheduled = false
    }
    private let state = Mutex(State())
    private let maxWeight: Int
    private let weigh: @Sendable (Operation) -> Int

    /// - Parameters:
    ///   - maxWeight: the most one send carries, by `weigh` (a heavier operation goes alone).
    init(maxWeight: Int, weigh: @escaping @Sendable (Operation) -> Int) {
        self.maxWeight = maxWeight
        self.weigh = weigh
    }

    /// Sends `operation` with those submitted at about the same time (by `send`), and waits for
    /// its result. The send runs to its end even if the submitter is cancelled.
    func submit(_ operation: Operation, send: @escaping Send) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let schedules = state.withLock { state -> Bool in
                state.waiting.append(Waiting(operation: operation, weight: weigh(operation), continuation: continuation))
                guard !state.sendScheduled else { return false }
                state.sendScheduled = true
                return true
            }
            if schedules { Task { await self.sendWaiting(send) } }
        }
    }

    private func sendWaiting(_ send: @escaping Send) async {
        let (batch, more) = state.withLock { state -> ([Waiting], Bool) in
            let batch = state.waiting.removeBatch(maxWeight: maxWeight)
            state.sendScheduled = !state.waiting.isEmpty
            return (batch, state.sendScheduled)
        }
        if more { Task { await self.sendWaiting(send) } }
        guard !batch.isEmpty else { return }
        let results = await send(batch.map(\.operation))
        precondition(results.count == batch.count, "a send answers every operation it carried")
        for (waiting, result) in zip(batch, results) { waiting.continuation.resume(with: result) }
    }
}
