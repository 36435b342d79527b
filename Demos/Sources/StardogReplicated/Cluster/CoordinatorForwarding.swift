@_spi(Concurrency) import Coordination
import DemoSupport
import Foundation
import Synchronization

/// Who coordinates, as this node last heard from the election, and the forwarding of operations
/// to that coordinator: operations that arrive together are sent together (one request, see
/// ``ForwardingOutbox``), and an operation sent to a coordinator that is replaced before it answers ends as
/// `OutcomeUnknown` (the old coordinator may or may not have committed it).
final class CoordinatorForwarding: Sendable {
    private let context: NodeContext
    private let election: LeaderElection

    private struct State {
        /// The coordinator the election names now (nil while there is none).
        var address: String?
        /// Set (with the new address) when the election names a coordinator other than the last
        /// one named, then replaced: a forwarded operation waits on it.
        var replaced = Latch<String>()
        /// The operations forwarded to the coordinator named now, replaced with the latch.
        var outbox = CoordinatorForwarding.newOutbox()
    }
    private let state = Mutex(State())
    /// How many operations each request to the coordinator carried.
    let batchSizes = BatchSizes()

    /// A coordinator as this node knows it: its address, the latch its successor sets, and the
    /// queue of operations forwarded to it.
    struct KnownCoordinator: Sendable {
        var address: String
        var replaced: Latch<String>
        var outbox: ForwardingOutbox<ClusterOperation, DatabaseVersion?>
    }

    /// A request carries at most a client body's worth of triples, as a coordinator round does.
    private static func newOutbox() -> ForwardingOutbox<ClusterOperation, DatabaseVersion?> {
        ForwardingOutbox(maxWeight: StardogHTTP.maxBody, weigh: ReplicationWire.weight(of:))
    }

    init(context: NodeContext, election: LeaderElection) {
        self.context = context
        self.election = election
    }

    /// Follows the election until cancelled.
    func follow() async throws {
        for try await leader in election.observe() {
            named(leader.leader.map { String(decoding: $0.payload, as: UTF8.self) })
        }
    }

    /// Records the coordinator the election names; a new one (not merely none for a while)
    /// releases the operations forwarded to its predecessor.
    func named(_ address: String?) {
        state.withLock { state in
            let previous = state.address
            state.address = address
            guard let address, address != previous else { return }
            state.replaced.set(address)
            state.replaced = Latch()
            state.outbox = Self.newOutbox()
        }
    }

    /// The coordinator: the one last observed, or the next leader the election reports (an
    /// election is under way), until `deadline`.
    func current(until deadline: ContinuousClock.Instant) async throws -> KnownCoordinator {
        let (known, replaced) = state.withLock { state in
            (state.address.map { KnownCoordinator(address: $0, replaced: state.replaced, outbox: state.outbox) }, state.replaced)
        }
        if let known { return known }
        let election = self.election
        let found = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                for try await leader in election.observe() {
                    if case .leader(let leader) = leader { return String(decoding: leader.payload, as: UTF8.self) }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let found else { throw ReplicatedError(.transactionAborted, "no coordinator is available; retry") }
        // (An outbox of its own: the one in the state is for the coordinator the state names next.)
        return KnownCoordinator(address: found, replaced: replaced, outbox: Self.newOutbox())
    }

    /// Sends `operation` to `coordinator` with the others waiting for it, and waits for its
    /// answer, or for a successor to be elected (then the outcome is unknown).
    func forward(_ operation: ClusterOperation, to coordinator: KnownCoordinator) async throws -> DatabaseVersion? {
        try await coordinator.outbox.submit(operation) { operations in
            do {
                let outcomes = try await self.send(operations, to: coordinator)
                return outcomes.map(\.result)
            } catch {
                return operations.map { _ in .failure(error) }
            }
        }
    }

    /// Sends `operations` to `coordinator` in one request: an outcome for each, or (thrown) the
    /// reason none came.
    private func send(_ operations: [ClusterOperation], to coordinator: KnownCoordinator) async throws -> [OperationOutcome] {
        let address = coordinator.address
        batchSizes.record(batchOf: operations.count)
        let body = ReplicationWire.encode(operations)
        let (peers, timeout) = (context.peers, context.configuration.commitTimeout * 4)
        do {
            return try await withThrowingTaskGroup(of: [OperationOutcome].self) { group in
                group.addTask {
                    let outcomes = try await peers.decoding(
                        .POST, address, "/admin/replication/operations", body: body, contentType: ReplicationWire.contentType, timeout: timeout
                    ) { answer in
                        // The writes may have been committed: not the client's malformed request.
                        do { return try ReplicationWire.decodeOutcomes(answer) } catch {
                            throw ReplicatedError(
                                .outcomeUnknown,
                                "the coordinator \(address)'s answer is unreadable (\(error)): the operation may or may not have been committed; read before retrying")
                        }
                    }
                    guard outcomes.count == operations.count else {
                        throw ReplicatedError(.outcomeUnknown, "the coordinator \(address) answered \(outcomes.count) outcomes for \(operations.count) operations")
                    }
                    return outcomes
                }
                group.addTask {
                    // A coordinator elected meanwhile means the one we wait for lost its term:
                    // its answer may never come.
                    var latch = coordinator.replaced
                    while let successor = await latch.wait() {
                        if successor != address {
                            throw ReplicatedError(
                                .outcomeUnknown,
                                "the coordinator \(address) stopped answering and \(successor) was elected meanwhile: the operation may or may not have been committed; read before retrying (the transaction is still open)")
                        }
                        latch = self.state.withLock { $0.replaced }
                    }
                    throw CancellationError()
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch let error as ReplicatedError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ReplicatedError(
                .outcomeUnknown,
                "the coordinator \(address) failed or did not answer during the operation (\(error)): it may or may not have been committed; read before retrying (the transaction is still open)")
        }
    }
}
