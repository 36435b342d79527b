/// sequins' staged backup requests: ask one peer; if it has not answered within the stage
/// timeout, ask the next one as well (without cancelling the first); an error moves on to the
/// next peer at once; the first good answer wins and cancels the rest; after the total timeout
/// everything is cancelled.
///
/// The decisions are ``StagedProxyMachine`` (pure, time comes in as events); this type is the
/// shell that runs the requests and the timers.
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

    private enum Event<Answer: Sendable>: Sendable {
        case answered(peer: Int, Answer?)
        case stageElapsed(Int)
        case totalElapsed
        case timerCancelled
    }

    /// Asks `peers` in order with staged backups. `attempt` performs one request (it is cancelled
    /// when another peer wins or time runs out) and returns an answer, which counts only if
    /// `isGood` accepts it (others, and errors, move on to the next peer).
    public func run<Answer: Sendable>(
        peers: [String],
        attempt: @escaping @Sendable (String) async throws -> Answer,
        isGood: @escaping @Sendable (Answer) -> Bool
    ) async -> Result<(peer: String, answer: Answer), Failure> {
        var machine = StagedProxyMachine(peerCount: peers.count)
        let clock = ContinuousClock()
        let deadline = clock.now + totalTimeout
        let (stageTimeout, totalTimeout) = (self.stageTimeout, self.totalTimeout)
        return await withTaskGroup(of: Event<Answer>.self) { group in
            defer { group.cancelAll() }
            group.addTask {
                do { try await Task.sleep(for: totalTimeout) } catch { return .timerCancelled }
                return .totalElapsed
            }
            var answers: [Int: Answer] = [:]
            var actions = machine.start()
            while true {
                for action in actions {
                    switch action {
                    case .ask(let peer, let stage):
                        group.addTask {
                            guard let answer = try? await attempt(peers[peer]), isGood(answer) else { return .answered(peer: peer, nil) }
                            return .answered(peer: peer, answer)
                        }
                        group.addTask {
                            do { try await Task.sleep(for: stageTimeout) } catch { return .timerCancelled }
                            return .stageElapsed(stage)
                        }
                    case .finish(.answer(let peer)):
                        return .success((peers[peer], answers[peer]!))
                    case .finish(.noAvailablePeers):
                        return .failure(.noAvailablePeers)
                    case .finish(.timeout):
                        return .failure(.timeout)
                    }
                }
                guard let event = await group.next(), !Task.isCancelled else { return .failure(.cancelled) }
                switch event {
                case .answered(let peer, let answer):
                    answers[peer] = answer
                    actions = machine.answered(peer: peer, good: answer != nil)
                case .stageElapsed(let stage):
                    // A stage that ends at or after the deadline starts nothing: the total timer decides.
                    actions = clock.now < deadline ? machine.stageElapsed(stage) : machine.totalElapsed()
                case .totalElapsed:
                    actions = machine.totalElapsed()
                case .timerCancelled:
                    actions = []
                }
            }
        }
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
