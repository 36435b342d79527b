import DemoSupport
import NIOCore
import NIOPosix

/// sequins' staged backup requests: ask one peer; if it has not answered within the stage
/// timeout, ask the next one as well (without cancelling the first); an error moves on to the
/// next peer at once; the first good answer wins and cancels the rest; after the total timeout
/// everything is cancelled.
///
/// The decisions are ``StagedProxyMachine`` (pure, time comes in as events); this type is the
/// shell that runs the requests and the timers. It drives them on one event loop with
/// callbacks and scheduled tasks, so a proxied request costs no Swift task and no Dispatch timer
/// (a task group with timer tasks cost an eighth of a proxied request, measured with wrk).
public struct StagedProxy: Sendable {
    public var totalTimeout: Duration
    public var stageTimeout: Duration

    public init(totalTimeout: Duration, stageTimeout: Duration) {
        self.totalTimeout = totalTimeout
        self.stageTimeout = stageTimeout
    }

    public enum Failure: Error, Sendable, Hashable {
        /// Every peer failed, or there were none (sequins: 502).
        case noAvailablePeers
        /// No good answer within the total timeout (sequins: 504).
        case timeout
        /// The caller was cancelled (sequins: 499).
        case cancelled
    }

    /// One request under way: its answer, and how to abandon it.
    public typealias Attempt<Answer: Sendable> = PendingAnswer<Answer>

    public typealias Outcome<Answer> = Result<(peer: String, answer: Answer), Failure>

    /// Asks `peers` in order with staged backups. `start` sends one request (its `cancel` is
    /// called when another peer wins or time runs out); an answer counts only if `isGood`
    /// accepts it (others, and failures, move on to the next peer). Cancelling the calling task
    /// ends the run with ``Failure/cancelled``.
    public func run<Answer: Sendable>(
        peers: [String],
        on eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any(),
        start: @escaping @Sendable (String) -> Attempt<Answer>,
        isGood: @escaping @Sendable (Answer) -> Bool
    ) async -> Outcome<Answer> {
        let (outcome, cancel) = begin(peers: peers, on: eventLoop, start: start, isGood: isGood)
        return await withTaskCancellationHandler {
            // The future only ever succeeds (failures are in the Result).
            (try? await outcome.get()) ?? .failure(.cancelled)
        } onCancel: {
            cancel()
        }
    }

    /// The same without a task, for callers on `eventLoop`: the outcome (the future only ever
    /// succeeds) and how to cancel the run (it then ends with ``Failure/cancelled``).
    public func begin<Answer: Sendable>(
        peers: [String],
        on eventLoop: any EventLoop,
        start: @escaping @Sendable (String) -> Attempt<Answer>,
        isGood: @escaping @Sendable (Answer) -> Bool
    ) -> (outcome: EventLoopFuture<Outcome<Answer>>, cancel: @Sendable () -> Void) {
        let run = StagedProxyRun(
            peers: peers, eventLoop: eventLoop, totalTimeout: TimeAmount(totalTimeout), stageTimeout: TimeAmount(stageTimeout),
            start: start, isGood: isGood)
        if eventLoop.inEventLoop { run.begin() } else { eventLoop.execute { run.begin() } }
        return (run.outcome.futureResult, { eventLoop.execute { run.finish(.failure(.cancelled)) } })
    }

    /// The same with `attempt` as an async function (run as a task per peer asked).
    public func run<Answer: Sendable>(
        peers: [String],
        attempt: @escaping @Sendable (String) async throws -> Answer,
        isGood: @escaping @Sendable (Answer) -> Bool
    ) async -> Outcome<Answer> {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        return await run(peers: peers, on: eventLoop, start: { peer in
            let promise = eventLoop.makePromise(of: Answer.self)
            let task = Task {
                do { promise.succeed(try await attempt(peer)) } catch { promise.fail(error) }
            }
            return Attempt(answer: promise.futureResult, cancel: { task.cancel() })
        }, isGood: isGood)
    }
}

/// One run of ``StagedProxy``: the machine, the requests under way and the timers. Everything
/// but the construction happens on `eventLoop`.
private final class StagedProxyRun<Answer: Sendable>: @unchecked Sendable {
    let peers: [String]
    let eventLoop: any EventLoop
    let totalTimeout: TimeAmount
    let stageTimeout: TimeAmount
    let start: @Sendable (String) -> StagedProxy.Attempt<Answer>
    let isGood: @Sendable (Answer) -> Bool
    let outcome: EventLoopPromise<StagedProxy.Outcome<Answer>>

    private var machine: StagedProxyMachine
    private var underWay: [Int: StagedProxy.Attempt<Answer>] = [:]
    private var answers: [Int: Answer] = [:]
    private var timers: [Scheduled<Void>] = []
    private var done = false

    init(
        peers: [String], eventLoop: any EventLoop, totalTimeout: TimeAmount, stageTimeout: TimeAmount,
        start: @escaping @Sendable (String) -> StagedProxy.Attempt<Answer>, isGood: @escaping @Sendable (Answer) -> Bool
    ) {
        self.peers = peers
        self.eventLoop = eventLoop
        self.totalTimeout = totalTimeout
        self.stageTimeout = stageTimeout
        self.start = start
        self.isGood = isGood
        machine = StagedProxyMachine(peerCount: peers.count)
        outcome = eventLoop.makePromise()
    }

    func begin() {
        guard !done else { return }
        timers.append(eventLoop.scheduleTask(in: totalTimeout) { self.apply(self.machine.totalElapsed()) })
        apply(machine.start())
    }

    private func apply(_ actions: [StagedProxyMachine.Action]) {
        for action in actions {
            switch action {
            case .ask(let peer, let stage):
                ask(peer, stage: stage)
            case .finish(.answer(let peer)):
                finish(.success((peers[peer], answers[peer]!)), winner: peer)
            case .finish(.noAvailablePeers):
                finish(.failure(.noAvailablePeers))
            case .finish(.timeout):
                finish(.failure(.timeout))
            }
        }
    }

    private func ask(_ peer: Int, stage: Int) {
        let attempt = start(peers[peer])
        underWay[peer] = attempt
        // The end of the last peer's stage could ask nobody: no timer for it.
        if peer + 1 < peers.count {
            timers.append(eventLoop.scheduleTask(in: stageTimeout) { self.apply(self.machine.stageElapsed(stage)) })
        }
        attempt.answer.hop(to: eventLoop).whenComplete { result in
            guard !self.done else { return }
            self.underWay[peer] = nil
            if case .success(let answer) = result, self.isGood(answer) {
                self.answers[peer] = answer
                self.apply(self.machine.answered(peer: peer, good: true))
            } else {
                self.apply(self.machine.answered(peer: peer, good: false))
            }
        }
    }

    /// Ends the run once: cancels the timers and every request but the winner's.
    func finish(_ result: StagedProxy.Outcome<Answer>, winner: Int? = nil) {
        guard !done else { return }
        done = true
        for timer in timers { timer.cancel() }
        for (peer, attempt) in underWay where peer != winner { attempt.cancel() }
        underWay = [:]
        outcome.succeed(result)
    }
}

/// The decisions of sequins' staged backup requests, without clocks or I/O: peers are asked in
/// order; each ask starts a stage, and only the end of the newest stage asks the next peer; a bad
/// answer asks the next peer at once; the first good answer, the total timeout, or running out of
/// peers with none outstanding finishes the run (once).
public struct StagedProxyMachine: Sendable, Hashable {
    public let peerCount: Int
    /// How many peers have been asked (the next one to ask is this index).
    public private(set) var asked = 0
    public private(set) var outstanding = 0
    /// The newest stage (1 for the first peer asked).
    public private(set) var stage = 0
    public private(set) var finished = false

    public enum Outcome: Sendable, Hashable {
        case answer(peer: Int)
        case noAvailablePeers
        case timeout
    }

    public enum Action: Sendable, Hashable {
        /// Send the request to `peer` and end stage `stage` after the stage timeout.
        case ask(peer: Int, stage: Int)
        case finish(Outcome)
    }

    public init(peerCount: Int) {
        self.peerCount = peerCount
    }

    public mutating func start() -> [Action] {
        guard !finished, asked == 0 else { return [] }
        return askNext() ?? finish(.noAvailablePeers)
    }

    /// `peer` answered: `good` if its answer counts, false for an error or a bad status.
    public mutating func answered(peer: Int, good: Bool) -> [Action] {
        guard !finished, peer < asked else { return [] }
        outstanding -= 1
        if good { return finish(.answer(peer: peer)) }
        if let ask = askNext() { return ask }
        return outstanding == 0 ? finish(.noAvailablePeers) : []
    }

    /// The stage timer of `stage` ran out; only the newest stage's counts.
    public mutating func stageElapsed(_ ended: Int) -> [Action] {
        guard !finished, ended == stage else { return [] }
        return askNext() ?? []
    }

    public mutating func totalElapsed() -> [Action] {
        guard !finished else { return [] }
        return finish(.timeout)
    }

    private mutating func askNext() -> [Action]? {
        guard asked < peerCount else { return nil }
        defer {
            asked += 1
            outstanding += 1
        }
        stage += 1
        return [.ask(peer: asked, stage: stage)]
    }

    private mutating func finish(_ outcome: Outcome) -> [Action] {
        finished = true
        return [.finish(outcome)]
    }
}
