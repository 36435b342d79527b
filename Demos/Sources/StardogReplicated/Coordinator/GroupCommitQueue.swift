import Synchronization

/// Group commit: operations submitted while a round runs wait for the next round, and one round
/// carries all of them (as many as fit in ``maxWeight``, at least one). One round runs at a time;
/// each submitter gets its own operation's result when its round ends.
///
/// Before a round starts, it lingers a little (at most twice as long as the last round took, and
/// ``maxLinger``) until as many operations wait as there were clients when the last round ended
/// (those it answered, who come back with their next operation as soon as they are answered, and
/// those already waiting). Without it, clients that commit in a loop split into cohorts that
/// alternate, a round of some followed by a round of the others, and every round costs the same
/// whatever it carries. The last of them come back about as long after a round as the round
/// took (their answer, their next request, a member's forward): a bound of one round's length
/// left a third of the rounds to start without one of them, who then waited a whole round.
final class GroupCommitQueue<Operation: Sendable, Value: Sendable>: Sendable {
    /// Runs one round. `take` gives the operations the round carries: the round calls it once,
    /// as late as it can (after taking the cluster lock, say), so that operations arriving
    /// meanwhile join it. One result per operation taken, in order.
    typealias Round = @Sendable (_ take: @Sendable () -> [Operation]) async -> [Result<Value, any Error>]

    private typealias Waiting = WaitingOperation<Operation, Value>
    private struct State {
        var waiting: [Waiting] = []
        var running = false
        /// The last round: how many operations it carried and how many waited when it ended, when
        /// it ended and how long it took.
        var lastRound: LastRound?
        /// The runner lingering until ``lingerTarget`` operations wait.
        var linger = LingerSlot()
        var lingerTarget = 0
    }
    /// A round as the next one's linger sees it.
    struct LastRound {
        var clients: Int
        var ended: ContinuousClock.Instant
        var duration: Duration
    }
    private let state = Mutex(State())
    private let maxWeight: Int
    private let weigh: @Sendable (Operation) -> Int
    private let maxLinger: Duration

    /// - Parameters:
    ///   - maxWeight: the most a round carries, by `weigh` (an operation heavier than that alone
    ///     still gets a round of its own).
    ///   - maxLinger: the longest a round waits for the last round's clients. The clients a
    ///     member answered come back to the coordinator through two hops (the member's answer,
    ///     their next write forwarded), 3–6 ms after a round on two shared cores: a shorter bound
    ///     started rounds without them, and they waited a whole round.
    init(maxWeight: Int, maxLinger: Duration = .milliseconds(8), weigh: @escaping @Sendable (Operation) -> Int) {
        self.maxWeight = maxWeight
        self.maxLinger = maxLinger
        self.weigh = weigh
    }

    /// Queues `operation` for the next round and waits for its result. When no round is running,
    /// rounds start, run by `round` (every submitter passes the same), until none waits; then
    /// `whenIdle` runs (a submission meanwhile may already have started the next rounds). A round
    /// runs to its end even if a submitter is cancelled: what a round decides cannot be taken back.
    func submit(_ operation: Operation, round: @escaping Round, whenIdle: @escaping @Sendable () -> Void = {}) async throws -> Value {
        try await submit([operation], round: round, whenIdle: whenIdle)[0].get()
    }

    /// Queues `operations` one after the other (a round that takes some of them takes them in
    /// order, and the next one the rest) and waits for all their results, in order: one wake-up
    /// for a member's forwarded batch instead of a task per operation.
    func submit(_ operations: [Operation], round: @escaping Round, whenIdle: @escaping @Sendable () -> Void = {}) async -> [Result<Value, any Error>] {
        guard !operations.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            let collector = ResultCollector(count: operations.count, continuation: continuation)
            let startsRunner = state.withLock { state -> Bool in
                for (index, operation) in operations.enumerated() {
                    state.waiting.append(Waiting(operation: operation, weight: weigh(operation)) { collector.deliver($0, at: index) })
                }
                guard !state.running else { return false }
                state.running = true
                return true
            }
            if startsRunner {
                Task {
                    await self.runRounds(round)
                    whenIdle()
                }
            }
            enoughToEndTheLinger()?.resume()
        }
    }

    private func runRounds(_ round: Round) async {
        while true {
            await lingerForTheLastRoundsClients()
            guard anyWaiting() else { return }
            let started = ContinuousClock.now
            let taken = Mutex<[Waiting]>([])
            let results = await round {
                let batch = self.nextBatch()
                taken.withLock { $0 = batch }
                return batch.map(\.operation)
            }
            let batch = taken.withLock { $0 }
            precondition(results.count == batch.count, "a round answers every operation it took")
            guard !batch.isEmpty else { continue }
            let ended = ContinuousClock.now
            state.withLock { $0.lastRound = LastRound(clients: batch.count + $0.waiting.count, ended: ended, duration: ended - started) }
            for (waiting, result) in zip(batch, results) { waiting.deliver(result) }
        }
    }

    /// Waits until as many operations wait as there were clients when the last round ended, or
    /// the linger is over. No wait after an idle spell.
    private func lingerForTheLastRoundsClients() async {
        guard let last = state.withLock({ $0.lastRound }),
            let (target, deadline) = Self.linger(after: last, now: .now, maxLinger: maxLinger)
        else { return }
        await LingerSlot.linger(
            until: deadline,
            register: { continuation in
                state.withLock { state in
                    guard state.waiting.count < target else { return nil }
                    state.lingerTarget = target
                    return state.linger.hold(continuation)
                }
            },
            expire: { id in self.state.withLock { $0.linger.take(ifID: id) } })
    }

    /// How many operations the next round waits for, and until when, after `last`: none (`nil`)
    /// once the linger's bound has passed (after an idle spell, say).
    static func linger(after last: LastRound, now: ContinuousClock.Instant, maxLinger: Duration) -> (target: Int, deadline: ContinuousClock.Instant)? {
        let deadline = last.ended + min(maxLinger, last.duration * 2)
        return deadline > now ? (last.clients, deadline) : nil
    }

    /// The lingering runner, taken, if the operations waiting are now enough for it.
    private func enoughToEndTheLinger() -> CheckedContinuation<Void, Never>? {
        state.withLock { state in
            guard state.linger.isOccupied, state.waiting.count >= state.lingerTarget else { return nil }
            return state.linger.take()
        }
    }

    /// Whether an operation waits; if none does, the runner stops (in the same step, so that a
    /// submission either sees it running or starts another).
    private func anyWaiting() -> Bool {
        state.withLock { state in
            if state.waiting.isEmpty { state.running = false }
            return state.running
        }
    }

    /// The operations of the next round, oldest first (only the runner takes them).
    private func nextBatch() -> [Waiting] {
        state.withLock { $0.waiting.removeBatch(maxWeight: maxWeight) }
    }
}
