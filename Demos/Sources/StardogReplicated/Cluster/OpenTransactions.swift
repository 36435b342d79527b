import DemoSupport
import Foundation
import Synchronization

/// The transactions clients opened on this node (`/<db>/transaction/begin`): their buffered
/// changes until commit or rollback. A commit sends the transaction's net effect to the
/// coordinator as one operation; until that answers, the transaction is busy.
final class OpenTransactions: Sendable {
    /// An open transaction untouched this long is rolled back.
    static let idleTimeout: Duration = .seconds(600)
    /// At most this many open transactions per node.
    static let maximum = 10_000

    private let buffers = Mutex<[String: TransactionBuffer]>([:])

    /// Opens a transaction on `database`; its id.
    func begin(database: String) throws -> String {
        let id = UUID().uuidString.lowercased()
        try buffers.withLock { buffers in
            let now = ContinuousClock.now
            // A transaction being committed is never idle: its outcome is still to be told.
            buffers = buffers.filter { $0.value.isCommitting || now - $0.value.lastUsed < Self.idleTimeout }
            guard buffers.count < Self.maximum else {
                throw ReplicatedError(.tooManyTransactions, "\(Self.maximum) transactions are open on this node; commit or roll back some")
            }
            buffers[id] = TransactionBuffer(database: database)
        }
        return id
    }

    /// Adds to or removes from an open transaction.
    func change(database: String, transaction: String, adding: Bool, ntriples: String) async throws {
        let triples = try await runOffPool(unless: ntriples.utf8.count <= StardogHTTP.smallBody) { try LocalStore.parse(ntriples) }
        try buffers.withLock { buffers in
            var buffer = try Self.idle(buffers, transaction, database)
            guard buffer.bodyBytes + ntriples.utf8.count <= StardogHTTP.maxBody else {
                throw ReplicatedError(.bodyTooLarge, "transaction \(transaction) would exceed \(StardogHTTP.maxBody) bytes")
            }
            if adding { buffer.add(triples, bytes: ntriples.utf8.count) } else { buffer.remove(triples, bytes: ntriples.utf8.count) }
            buffers[transaction] = buffer
        }
    }

    /// Commits an open transaction through `submit` (which sends it to the coordinator). On
    /// failure it stays open (commit again, or roll back).
    func commit(
        database: String, transaction: String, through submit: (ClusterOperation) async throws -> DatabaseVersion?
    ) async throws -> DatabaseVersion? {
        let buffer = try buffers.withLock { buffers -> TransactionBuffer in
            var buffer = try Self.idle(buffers, transaction, database)
            buffer.isCommitting = true
            buffer.lastUsed = .now
            buffers[transaction] = buffer
            return buffer
        }
        let (add, remove) = buffer.netEffect
        let operation = ClusterOperation(kind: .transaction, database: database, add: NTriples.serialize(add), remove: NTriples.serialize(remove))
        do {
            let next = try await submit(operation)
            buffers.withLock { _ = $0.removeValue(forKey: transaction) }
            return next
        } catch {
            buffers.withLock { buffers in
                buffers[transaction]?.isCommitting = false
                buffers[transaction]?.lastUsed = .now
            }
            throw error
        }
    }

    func rollback(database: String, transaction: String) throws {
        try buffers.withLock { buffers in
            _ = try Self.idle(buffers, transaction, database)
            buffers[transaction] = nil
        }
    }

    /// The transaction's buffer, if it is open on `database` and not being committed.
    private static func idle(_ buffers: [String: TransactionBuffer], _ transaction: String, _ database: String) throws -> TransactionBuffer {
        guard let buffer = buffers[transaction], buffer.database == database else {
            throw ReplicatedError(.unknownTransaction, "unknown transaction '\(transaction)' on database '\(database)'")
        }
        guard !buffer.isCommitting else { throw ReplicatedError(.transactionBusy, "transaction \(transaction) is being committed") }
        return buffer
    }
}
