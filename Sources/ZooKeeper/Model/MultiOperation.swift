/// One operation of an atomic ``ZooKeeperClient/multi(_:)`` transaction.
public enum MultiOperation: Sendable, Hashable {
    /// Create a node (TTL modes are not available in a multi with the 3.8 C client).
    case create(path: String, data: [UInt8] = [], mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe)
    /// Delete a node, optionally only at `version`.
    case delete(path: String, version: Int32? = nil)
    /// Replace a node's data, optionally only at `version`.
    case setData(path: String, data: [UInt8], version: Int32? = nil)
    /// Fail the whole transaction unless the node exists (at `version`, when given).
    case check(path: String, version: Int32? = nil)

    /// The node the operation is about.
    public var path: String {
        switch self {
        case .create(let path, _, _, _), .delete(let path, _), .setData(let path, _, _), .check(let path, _):
            return path
        }
    }
}

/// The result of one operation of a successful ``ZooKeeperClient/multi(_:)``.
public enum MultiResult: Sendable, Hashable {
    /// The node was created at `path` (with the sequence suffix for sequential modes).
    case created(path: String)
    /// The node was deleted.
    case deleted
    /// The data was set; the node's new ``Stat``.
    case dataSet(Stat)
    /// The version check passed.
    case checked
}
