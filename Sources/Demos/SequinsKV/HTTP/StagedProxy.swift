/// sequins' staged backup requests: ask one peer; if it has not answered within the stage
/// timeout, ask the next one as well (without cancelling the first); an error moves on to the
/// next peer at once; the first good answer wins and cancels the rest; after the total timeout
/// everything is cancelled.
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
        case answer(peer: String, Answer)
        case failed(peer: String, any Error)
        case stageElapsed(Int)
        case totalElapsed
    }

    /// Asks `peers` in order with staged backups. `attempt` performs one request (it is cancelled
    /// when another peer wins or time runs out) and returns an answer, which counts only if
    /// `isGood` accepts it (others count as errors).
    public func run<Answer: Sendable>(
        peers: [String],
        attempt: @escaping @Sendable (String) async throws -> Answer,
        isGood: @escaping @Sendable (Answer) -> Bool
    ) async -> Result<(peer: String, answer: Answer), Failure> {
        if peers.isEmpty { return .failure(.noAvailablePeers) }
        let clock = ContinuousClock()
        let deadline = clock.now + totalTimeout
        let stageTimeout = self.stageTimeout
        let totalTimeout = self.totalTimeout
        return await withTaskGroup(of: Event<Answer>.self) { group in
            defer { group.cancelAll() }
            group.addTask {
                do { try await Task.sleep(for: totalTimeout) } catch { return .stageElapsed(-1) }
                return .totalElapsed
            }
            var next = 0
            var outstanding = 0
            var stage = 0
            // Starts the next peer and its stage timer; false when no peer is left.
            func startNext() -> Bool {
                guard next < peers.count, clock.now < deadline else { return false }
                let peer = peers[next]
                next += 1
                outstanding += 1
                stage += 1
                let stageID = stage
                group.addTask {
                    do {
                        let answer = try await attempt(peer)
                        return isGood(answer) ? .answer(peer: peer, answer) : .failed(peer: peer, StagedProxyError.badAnswer)
                    } catch {
                        return .failed(peer: peer, error)
                    }
                }
                group.addTask {
                    do { try await Task.sleep(for: stageTimeout) } catch { return .stageElapsed(-1) }
                    return .stageElapsed(stageID)
                }
                return true
            }
            _ = startNext()
            while let event = await group.next() {
                if Task.isCancelled { return .failure(.cancelled) }
                switch event {
                case .answer(let peer, let answer):
                    return .success((peer, answer))
                case .failed:
                    outstanding -= 1
                    if !startNext() && outstanding == 0 {
                        return .failure(clock.now < deadline ? .noAvailablePeers : .timeout)
                    }
                case .stageElapsed(let id):
                    if id == stage { _ = startNext() }
                case .totalElapsed:
                    return .failure(.timeout)
                }
            }
            return .failure(.cancelled)
        }
    }
}

enum StagedProxyError: Error {
    case badAnswer
}
