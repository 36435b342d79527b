import ZooKeeper

/// The errors of the coordination recipes (ZooKeeper's own errors stay `ZooKeeperError`s).
///
/// Switch on ``code``; ``path`` is the recipe's node (or the node concerned), ``message`` says
/// what happened for a human.
public struct CoordinationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, switchable error code.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        /// The wait ran past its deadline; nothing is held and no node is left behind.
        public static let timedOut = Code(name: "timedOut")
        /// What was held is no longer safe to assume (session lost, node deleted).
        public static let lost = Code(name: "lost")
        /// The operation needs something held, and it is not.
        public static let notHeld = Code(name: "notHeld")
        /// Another live session already uses this member id.
        public static let duplicateMember = Code(name: "duplicateMember")
        /// The recipe was used after it was closed or left.
        public static let closed = Code(name: "closed")
        /// An argument was refused before anything was written (the message names it).
        public static let invalidArgument = Code(name: "invalidArgument")
        public var description: String { name }
    }

    /// The stable code to switch on.
    public var code: Code
    /// The recipe's node, or the node the error is about.
    public var path: String
    /// A human-readable explanation.
    public var message: String

    /// An error with `code` about `path`.
    public init(_ code: Code, path: String, message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { "CoordinationError.\(code) at \(path): \(message)" }
}
