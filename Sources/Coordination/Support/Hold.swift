import Synchronization
import ZooKeeper

/// What a lease and a leadership term share: our node, the latch that says when the hold ended,
/// and the monitor that sets it.
final class Hold: Sendable {
    let node: ContenderNode
    let ended = Latch<LossReason>()
    private let monitor: HoldMonitor

    init(client: ZooKeeperClient, node: ContenderNode, policy: LossPolicy) {
        self.node = node
        monitor = HoldMonitor(client: client, node: node, policy: policy, ended: ended)
    }

    deinit { monitor.stop() }

    var isActive: Bool { ended.value == nil }

    func waitUntilEnded() async -> LossReason? {
        monitor.watchNode()
        return await ended.wait()
    }

    /// Ends the hold by its holder's choice and deletes our node.
    func end(removingWith contender: QueueContender) async {
        ended.set(.released)
        monitor.stop()
        await contender.remove(path: node.path, owner: node.sessionID)
    }

    /// Runs `body` while the hold lasts, cancels it when the hold ends first (then throws
    /// `lostError()`), and always ends the hold afterwards.
    func run<R: Sendable>(
        _ body: @escaping @Sendable () async throws -> R, endingWith contender: QueueContender,
        lostError: @escaping @Sendable () -> CoordinationError
    ) async throws -> R {
        do {
            let result = try await Coordination.run(body, cancelledWhen: { await self.waitUntilEnded() != nil }, lostError: lostError)
            await end(removingWith: contender)
            return result
        } catch {
            await end(removingWith: contender)
            throw error
        }
    }

    func lostError(_ what: String) -> CoordinationError {
        CoordinationError(.lost, path: node.path, message: "\(what) (\(ended.value.map { "\($0)" } ?? "unknown"))")
    }
}

/// Watches what a holder holds: the session, as the loss policy says, from the start; its own
/// node (one more request) only once someone waits for the loss.
final class HoldMonitor: Sendable {
    private let client: ZooKeeperClient
    private let node: ContenderNode
    private let ended: Latch<LossReason>
    private let tasks = Mutex<(session: Task<Void, Never>?, node: Task<Void, Never>?, stopped: Bool)>((nil, nil, false))

    init(client: ZooKeeperClient, node: ContenderNode, policy: LossPolicy, ended: Latch<LossReason>) {
        self.client = client
        self.node = node
        self.ended = ended
        let session = Task {
            for await state in client.sessionEvents where policy.isLoss(state, heldOn: node.generation) {
                switch state {
                case .suspended: ended.set(.suspended)
                case .closed: ended.set(.clientClosed)
                default: ended.set(.sessionLost)
                }
                return
            }
        }
        tasks.withLock { $0.session = session }
    }

    /// Starts watching our node (idempotent).
    func watchNode() {
        let client = self.client
        let node = self.node
        let ended = self.ended
        tasks.withLock { tasks in
            guard tasks.node == nil, !tasks.stopped else { return }
            tasks.node = Task {
                while !Task.isCancelled && ended.value == nil {
                    do {
                        let (_, watch) = try await client.withRetry(.untilSessionLost) { try await client.getDataAndWatch(node.path) }
                        if try await watch.triggered().kind == .nodeDeleted {
                            ended.set(.nodeDeleted)
                            return
                        }
                    } catch let error as ZooKeeperError where error.code == .noNode {
                        ended.set(.nodeDeleted)
                        return
                    } catch {
                        return  // a lost session and close reach the session task
                    }
                }
            }
        }
    }

    func stop() {
        let running = tasks.withLock { tasks -> [Task<Void, Never>] in
            tasks.stopped = true
            return [tasks.session, tasks.node].compactMap { $0 }
        }
        for task in running { task.cancel() }
    }
}
