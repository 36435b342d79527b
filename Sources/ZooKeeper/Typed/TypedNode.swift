/// A znode that holds a value of one type: reads decode, writes encode, and a value that does
/// not decode is an error that names the node and the problem (Curator's `ModeledFramework`).
///
/// ```swift
/// struct Limits: Codable, Sendable { var maxConnections: Int }
/// let limits = TypedNode(client: client, path: "/config/limits", as: Limits.self)
/// try await limits.create(Limits(maxConnections: 100), parents: .persistent)
/// let (current, stat) = try await limits.get()
/// try await limits.set(Limits(maxConnections: current.maxConnections * 2), version: stat.version)
/// ```
public struct TypedNode<Codec: NodeCodec>: Sendable {
    /// The client it reads and writes with.
    public let client: ZooKeeperClient
    /// The node.
    public let path: String
    /// How its value is stored.
    public let codec: Codec

    /// A typed view of `path` with `codec`.
    public init(client: ZooKeeperClient, path: String, codec: Codec) {
        self.client = client
        self.path = path
        self.codec = codec
    }

    /// The value and the node's ``Stat``.
    /// - Throws: `.marshallingError` naming the node and the decoding problem when its bytes do
    ///   not hold a value; what ``ZooKeeperClient/getData(_:)`` throws.
    public func get() async throws -> (value: Codec.Value, stat: Stat) {
        let node = try await client.getData(path)
        return (try decode(node.bytes), node.stat)
    }

    /// Replaces the value; with `version`, only if the node is at that version.
    /// - Throws: `.marshallingError` when the value cannot be encoded (nothing is written); what
    ///   ``ZooKeeperClient/setData(_:data:version:)`` throws.
    @discardableResult
    public func set(_ value: Codec.Value, version: Int32? = nil) async throws -> Stat {
        try await client.setData(path, data: encode(value), version: version)
    }

    /// Creates the node with `value`.
    /// - Throws: `.marshallingError` when the value cannot be encoded (nothing is created); what
    ///   ``ZooKeeperClient/create(_:data:mode:acl:parents:)`` throws.
    @discardableResult
    public func create(
        _ value: Codec.Value, mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe, parents: ParentCreation = .none
    ) async throws -> CreatedNode {
        try await client.create(path, data: encode(value), mode: mode, acl: acl, parents: parents)
    }

    /// The value as a level-triggered stream (``ZooKeeperClient/dataUpdates(_:)`` decoded): a
    /// value that does not decode is reported as ``TypedUpdate/undecodable(_:)`` and the stream
    /// goes on.
    public func updates() -> TypedNodeUpdates<Codec> {
        TypedNodeUpdates(updates: client.dataUpdates(path), node: self)
    }

    func encode(_ value: Codec.Value) throws(ZooKeeperError) -> [UInt8] {
        do {
            return try codec.encode(value)
        } catch {
            throw ZooKeeperError(.marshallingError, path: path, message: "cannot encode a \(Codec.Value.self) for \(path): \(error)")
        }
    }

    func decode(_ bytes: [UInt8]) throws(ZooKeeperError) -> Codec.Value {
        do {
            return try codec.decode(bytes)
        } catch {
            throw ZooKeeperError(
                .marshallingError, path: path, message: "\(path) does not hold a \(Codec.Value.self) (\(bytes.count) bytes): \(error)")
        }
    }
}

extension TypedNode {
    /// A typed view of `path` whose value is stored as JSON.
    public init<Value: Codable & Sendable>(client: ZooKeeperClient, path: String, as type: Value.Type) where Codec == JSONNodeCodec<Value> {
        self.init(client: client, path: path, codec: JSONNodeCodec())
    }
}

/// One snapshot of a ``TypedNode/updates()`` stream.
public enum TypedUpdate<Value: Sendable>: Sendable {
    /// The node exists and holds this value.
    case value(Value, Stat)
    /// The node does not exist.
    case noNode
    /// The node exists but its bytes do not hold a value: the `.marshallingError` names the node
    /// and the problem.
    case undecodable(ZooKeeperError)
}

/// A typed node's value over time (see ``TypedNode/updates()``).
public struct TypedNodeUpdates<Codec: NodeCodec>: AsyncSequence, Sendable {
    public typealias Element = TypedUpdate<Codec.Value>
    public typealias Failure = any Error
    let updates: DataUpdates
    let node: TypedNode<Codec>

    /// Iterates the snapshots; each iterator follows the node on its own.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: DataUpdates.AsyncIterator
        let node: TypedNode<Codec>

        /// The next snapshot; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> TypedUpdate<Codec.Value>? {
            try await next(isolation: nil)
        }

        /// The next snapshot, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> TypedUpdate<Codec.Value>? {
            guard let update = try await base.next(isolation: actor) else { return nil }
            switch update {
            case .noNode:
                return .noNode
            case .data(let data):
                do {
                    return .value(try node.decode(data.bytes), data.stat)
                } catch {
                    return .undecodable(error)
                }
            }
        }
    }

    /// Starts following the node.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: updates.makeAsyncIterator(), node: node)
    }
}
