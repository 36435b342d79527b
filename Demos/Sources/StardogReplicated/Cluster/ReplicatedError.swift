import Coordination
import ZooKeeper

/// An error a node answers with: a stable code (part of the HTTP API: the `code` field of the
/// JSON error body), the HTTP status, and a message naming the problem.
public struct ReplicatedError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public let status: Int
        public var description: String { name }

        public static let unknownDatabase = Code(name: "UnknownDatabase", status: 404)
        public static let databaseExists = Code(name: "DatabaseExists", status: 409)
        public static let invalidDatabaseName = Code(name: "InvalidDatabaseName", status: 400)
        public static let unknownTransaction = Code(name: "UnknownTransaction", status: 404)
        public static let malformedRDF = Code(name: "MalformedRDF", status: 400)
        public static let malformedRequest = Code(name: "MalformedRequest", status: 400)
        public static let bodyTooLarge = Code(name: "BodyTooLarge", status: 413)
        public static let readOnly = Code(name: "ReadOnly", status: 403)
        /// This node is not a synced member (joining, expelled, or without a ZooKeeper session).
        public static let notInCluster = Code(name: "NotInCluster", status: 503)
        /// No coordinator could be reached, or it failed mid-operation: nothing was applied; retry.
        public static let transactionAborted = Code(name: "TransactionAborted", status: 503)
        /// The coordinator stopped answering after the operation was sent to it (it failed, was
        /// paused, or a new coordinator was elected meanwhile): it may or may not have been
        /// committed. Read before retrying; the transaction is still open.
        public static let outcomeUnknown = Code(name: "OutcomeUnknown", status: 503)
        /// A prepare this member cannot take (it is not at the version the coordinator expects).
        public static let outOfSync = Code(name: "OutOfSync", status: 409)
        public static let storage = Code(name: "StorageFailure", status: 500)
        /// A change, commit or rollback of a transaction whose commit is under way.
        public static let transactionBusy = Code(name: "TransactionBusy", status: 409)
        public static let tooManyTransactions = Code(name: "TooManyTransactions", status: 503)
        /// ZooKeeper (or the cluster lock) could not be reached in time; retry.
        public static let clusterUnavailable = Code(name: "ClusterUnavailable", status: 503)
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

extension ReplicatedError {
    /// The error a node answers for `error`: itself when it is a ``ReplicatedError``, ZooKeeper's
    /// and the cluster lock's as ``Code-swift.struct/clusterUnavailable``, anything else as
    /// ``Code-swift.struct/storage``.
    init(answering error: any Error) {
        switch error {
        case let error as ReplicatedError: self = error
        case is ZooKeeperError, is CoordinationError: self.init(.clusterUnavailable, "ZooKeeper: \(error)")
        default: self.init(.storage, "\(error)")
        }
    }
}

extension ReplicatedError.Code {
    /// Every code, for reading one back from its name in an error body (a code missing here
    /// reaches a forwarding node as `TransactionAborted`).
    static let all: [ReplicatedError.Code] = [
        .unknownDatabase, .databaseExists, .invalidDatabaseName, .unknownTransaction, .malformedRDF, .malformedRequest, .bodyTooLarge,
        .readOnly, .notInCluster, .transactionAborted, .outcomeUnknown, .outOfSync, .storage, .transactionBusy, .tooManyTransactions, .clusterUnavailable,
    ]

    static func named(_ name: String) -> ReplicatedError.Code? { all.first { $0.name == name } }
}
