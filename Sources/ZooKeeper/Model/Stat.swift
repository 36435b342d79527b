import CZooKeeper

/// The metadata ZooKeeper keeps for every node.
public struct Stat: Sendable, Hashable {
    /// The zxid of the change that created the node.
    public var czxid: Int64
    /// The zxid of the change that last modified the node's data.
    public var mzxid: Int64
    /// Creation time, milliseconds since the epoch.
    public var ctime: Int64
    /// Last modification time, milliseconds since the epoch.
    public var mtime: Int64
    /// The number of changes to the data.
    public var version: Int32
    /// The number of changes to the children.
    public var cversion: Int32
    /// The number of changes to the ACL.
    public var aversion: Int32
    /// The session id of the owner if the node is ephemeral, 0 otherwise.
    public var ephemeralOwner: Int64
    /// The length of the data.
    public var dataLength: Int32
    /// The number of children.
    public var numChildren: Int32
    /// The zxid of the change that last modified the children.
    public var pzxid: Int64

    /// A stat with these values (zero by default), for tests and for values read elsewhere.
    public init(
        czxid: Int64 = 0, mzxid: Int64 = 0, ctime: Int64 = 0, mtime: Int64 = 0, version: Int32 = 0,
        cversion: Int32 = 0, aversion: Int32 = 0, ephemeralOwner: Int64 = 0, dataLength: Int32 = 0,
        numChildren: Int32 = 0, pzxid: Int64 = 0
    ) {
        self.czxid = czxid
        self.mzxid = mzxid
        self.ctime = ctime
        self.mtime = mtime
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeralOwner = ephemeralOwner
        self.dataLength = dataLength
        self.numChildren = numChildren
        self.pzxid = pzxid
    }

    /// Whether the node is ephemeral.
    public var isEphemeral: Bool { ephemeralOwner != 0 }

    init(_ stat: CZooKeeper.Stat) {
        self.init(
            czxid: stat.czxid, mzxid: stat.mzxid, ctime: stat.ctime, mtime: stat.mtime,
            version: stat.version, cversion: stat.cversion, aversion: stat.aversion,
            ephemeralOwner: stat.ephemeralOwner, dataLength: stat.dataLength,
            numChildren: stat.numChildren, pzxid: stat.pzxid
        )
    }

    init(_ pointer: UnsafePointer<CZooKeeper.Stat>?) {
        if let pointer { self.init(pointer.pointee) } else { self.init() }
    }
}

/// A node's data and its ``Stat``.
public struct NodeData: Sendable, Hashable {
    /// The bytes stored in the node (empty for a node created with no data).
    public var bytes: [UInt8]
    /// The node's metadata when it was read.
    public var stat: Stat

    /// Data and metadata as read.
    public init(bytes: [UInt8], stat: Stat) {
        self.bytes = bytes
        self.stat = stat
    }

    /// The data decoded as UTF-8.
    public var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// A node's children (names, not paths) and its ``Stat``.
public struct NodeChildren: Sendable, Hashable {
    /// The children's names (not paths), unsorted.
    public var names: [String]
    /// The parent's metadata when it was read.
    public var stat: Stat

    /// Children and metadata as read.
    public init(names: [String], stat: Stat) {
        self.names = names
        self.stat = stat
    }
}

/// What ``ZooKeeperClient/create(_:data:mode:acl:parents:)`` made.
public struct CreatedNode: Sendable, Hashable {
    /// The path of the new node (with the sequence suffix for sequential modes).
    public var path: String
    /// The new node's metadata.
    public var stat: Stat
}
