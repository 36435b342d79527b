import CZooKeeper

/// How a node is created: lifetime, sequence suffix, container or TTL.
public struct CreateMode: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Sendable, Hashable {
        case persistent, ephemeral, persistentSequential, ephemeralSequential, container
        case persistentWithTTL(Duration), persistentSequentialWithTTL(Duration)
    }
    let kind: Kind

    /// Lives until deleted.
    public static let persistent = CreateMode(kind: .persistent)
    /// Deleted by the server when the creating session ends.
    public static let ephemeral = CreateMode(kind: .ephemeral)
    /// Persistent, with a 10-digit increasing suffix appended to the name.
    public static let persistentSequential = CreateMode(kind: .persistentSequential)
    /// Ephemeral, with a 10-digit increasing suffix appended to the name.
    public static let ephemeralSequential = CreateMode(kind: .ephemeralSequential)
    /// Deleted by the server some time after its last child is deleted (used for lock and election parents).
    public static let container = CreateMode(kind: .container)
    /// Persistent, deleted by the server when it has had no children and no change for `ttl`.
    /// The server must run with `-Dzookeeper.extendedTypesEnabled=true`, otherwise the create fails with `.unimplemented`.
    public static func persistentWithTTL(_ ttl: Duration) -> CreateMode { CreateMode(kind: .persistentWithTTL(ttl)) }
    /// Like ``persistentWithTTL(_:)``, with a sequence suffix.
    public static func persistentSequentialWithTTL(_ ttl: Duration) -> CreateMode {
        CreateMode(kind: .persistentSequentialWithTTL(ttl))
    }

    /// Whether the node ends with its session.
    public var isEphemeral: Bool { kind == .ephemeral || kind == .ephemeralSequential }

    /// Whether the server appends a sequence number to the name.
    public var isSequential: Bool {
        switch kind {
        case .persistentSequential, .ephemeralSequential, .persistentSequentialWithTTL: return true
        default: return false
        }
    }

    var cFlags: Int32 {
        switch kind {
        case .persistent: return ZOO_PERSISTENT
        case .ephemeral: return ZOO_EPHEMERAL
        case .persistentSequential: return ZOO_PERSISTENT_SEQUENTIAL
        case .ephemeralSequential: return ZOO_EPHEMERAL_SEQUENTIAL
        case .container: return ZOO_CONTAINER
        case .persistentWithTTL: return ZOO_PERSISTENT_WITH_TTL
        case .persistentSequentialWithTTL: return ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL
        }
    }

    /// The TTL in milliseconds, or -1 for modes without one (saturated: a huge TTL does not overflow).
    var ttlMilliseconds: Int64 {
        switch kind {
        case .persistentWithTTL(let ttl), .persistentSequentialWithTTL(let ttl):
            let (milliseconds, overflow) = ttl.components.seconds.multipliedReportingOverflow(by: 1000)
            if overflow { return ttl < .zero ? Int64.min : Int64.max }
            return milliseconds.addingReportingOverflow(ttl.components.attoseconds / 1_000_000_000_000_000).partialValue
        default: return -1
        }
    }

    /// Whether the mode has a TTL.
    var hasTTL: Bool {
        switch kind {
        case .persistentWithTTL, .persistentSequentialWithTTL: return true
        default: return false
        }
    }

    /// The longest TTL the server takes (`TTL_MASK` of its ephemeral owner field): about 34 years.
    static let maxTTLMilliseconds: Int64 = 0xFF_FFFF_FFFF

    /// Refuses a TTL the server would refuse (under a millisecond, or past ``maxTTLMilliseconds``),
    /// naming it, before anything is sent.
    func validateTTL(path: String) throws(ZooKeeperError) {
        guard hasTTL else { return }
        let ttl = ttlMilliseconds
        guard (1...Self.maxTTLMilliseconds).contains(ttl) else {
            throw ZooKeeperError(.badArguments, path: path, message: "a TTL must be from 1 ms to \(Self.maxTTLMilliseconds) ms (about 34 years); this one is \(ttl) ms")
        }
    }

    public var description: String {
        switch kind {
        case .persistent: return "persistent"
        case .ephemeral: return "ephemeral"
        case .persistentSequential: return "persistentSequential"
        case .ephemeralSequential: return "ephemeralSequential"
        case .container: return "container"
        case .persistentWithTTL(let ttl): return "persistentWithTTL(\(ttl))"
        case .persistentSequentialWithTTL(let ttl): return "persistentSequentialWithTTL(\(ttl))"
        }
    }
}

/// How ``ZooKeeperClient/create(_:data:mode:acl:parents:)`` treats missing parent nodes.
public enum ParentCreation: Sendable, Hashable {
    /// Fail with `.noNode` when the parent is missing.
    case none
    /// Create missing parents as persistent nodes.
    case persistent
    /// Create missing parents as container nodes, which the server removes once they are empty.
    case container
}
