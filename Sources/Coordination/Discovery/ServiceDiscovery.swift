import Synchronization
import ZooKeeper

/// Service registration and lookup on `curator-x-discovery`'s layout, `<basePath>/<name>/<id>`
/// holding each instance's JSON document (``ServiceInstance``), so Swift and Java services
/// register with and find each other.
///
/// Registrations of ``ServiceInstance/ServiceType/dynamic`` instances are ephemeral and kept:
/// published again, with their latest document, on every new session after an expiry, until
/// ``unregister(_:)``. Static and permanent ones are persistent nodes.
///
/// ```swift
/// let discovery = ServiceDiscovery(client: client, basePath: "/services")
/// try await discovery.register(ServiceInstance(name: "api", address: "10.0.0.7", port: 8080))
/// let instances = try await discovery.instances(of: "api")
/// ```
public final class ServiceDiscovery: Sendable {
    /// The client it registers and reads with.
    public let client: ZooKeeperClient
    /// The node under which every service has its node.
    public let basePath: String

    /// The registrations of this process: the group each dynamic instance is a member of.
    private let registrations = Mutex<[String: MembershipWatcher]>([:])

    /// Discovery under `basePath`.
    public init(client: ZooKeeperClient, basePath: String) {
        self.client = client
        self.basePath = basePath
    }

    /// A service's node.
    public func servicePath(_ name: String) -> String { ZooKeeperPath.join(basePath, name) }

    private static func key(_ instance: ServiceInstance) -> String { instance.name + "/" + instance.id }

    /// Registers `instance` (a dynamic one is kept across expiries until ``unregister(_:)``).
    /// - Throws: `.invalidPath` naming ``basePath``; ``CoordinationError/Code/invalidArgument``
    ///   for a name or id that is not one node name; ``CoordinationError/Code/duplicateMember``
    ///   when another live session holds the id; what the client throws.
    public func register(_ instance: ServiceInstance) async throws {
        try ZooKeeperPath.validate(basePath)  // before it is joined with the name (`""` + `api` is valid)
        try Self.checkNodeName(instance.name, what: "service name", path: basePath)
        let group = servicePath(instance.name)
        let document = Array(instance.curatorJSON.utf8)
        try await recipeSpan("discovery.register", path: group) {
            switch instance.serviceType {
            case .dynamic, .dynamicSequential:
                let watcher = registrations.withLock { registrations in
                    registrations[Self.key(instance)] ?? MembershipWatcher(client: client, group: group)
                }
                if instance.serviceType == .dynamic {
                    try await watcher.join(memberID: instance.id, payload: document)
                } else {
                    try await watcher.join(sequentialPrefix: instance.id, payload: document)
                }
                registrations.withLock { $0[Self.key(instance)] = watcher }
            case .static, .permanent:
                try Self.checkNodeName(instance.id, what: "instance id", path: group)
                let path = ZooKeeperPath.join(group, instance.id)
                do {
                    try await client.create(path, data: document, parents: .container)
                } catch let error as ZooKeeperError where error.code == .nodeExists {
                    try await client.setData(path, data: document)
                }
            }
        }
    }

    /// Replaces a registered instance's document (its id and name stay).
    /// - Throws: `.invalidPath` naming ``basePath``; `.badArguments` for a `DYNAMIC_SEQUENTIAL`
    ///   instance this object did not register (its node's name has a sequence this object does
    ///   not know); what the client throws.
    public func update(_ instance: ServiceInstance) async throws {
        try ZooKeeperPath.validate(basePath)
        let document = Array(instance.curatorJSON.utf8)
        if let watcher = registrations.withLock({ $0[Self.key(instance)] }) {
            try await watcher.updatePayload(document)
        } else {
            try await client.setData(try unregisteredNode(of: instance), data: document)
        }
    }

    /// Removes an instance's registration (and its node).
    /// - Throws: `.invalidPath` naming ``basePath``; `.badArguments` for a `DYNAMIC_SEQUENTIAL`
    ///   instance this object did not register; what the client throws.
    public func unregister(_ instance: ServiceInstance) async throws {
        try ZooKeeperPath.validate(basePath)
        if let watcher = registrations.withLock({ $0.removeValue(forKey: Self.key(instance)) }) {
            try await watcher.leave()
        } else {
            try await client.deleteIfExists(try unregisteredNode(of: instance))
        }
    }

    /// The node of an instance this object did not register: `<service>/<id>`, which is not the
    /// node of a sequential instance (`<id><sequence>`).
    private func unregisteredNode(of instance: ServiceInstance) throws(ZooKeeperError) -> String {
        let path = ZooKeeperPath.join(servicePath(instance.name), instance.id)
        guard instance.serviceType != .dynamicSequential else {
            throw ZooKeeperError(
                .badArguments, path: path,
                message: "a DYNAMIC_SEQUENTIAL instance's node is named <id><sequence>: only the ServiceDiscovery that registered it can change it")
        }
        return path
    }

    /// The names of the services under the base path.
    public func serviceNames() async throws -> [String] {
        try await client.childrenIfExists(basePath).sorted()
    }

    /// The instances of `name` now, read once (every document in one round trip), in the order of
    /// their node names (the ids, but for dynamic sequential instances).
    /// - Throws: `.invalidPath` naming ``basePath``; `.marshallingError` naming the node of an
    ///   instance whose document does not parse (none is left out silently); what the client throws.
    public func instances(of name: String) async throws -> [ServiceInstance] {
        try ZooKeeperPath.validate(basePath)
        let service = servicePath(name)
        let nodes = try await client.childrenIfExists(service).sorted()
        let replies = nodes.map { ($0, client.submitGetData(ZooKeeperPath.join(service, $0))) }
        var instances: [ServiceInstance] = []
        for (node, reply) in replies {
            do {
                instances.append(try ServiceInstance(curatorJSON: try await reply.value().bytes, path: ZooKeeperPath.join(service, node)))
            } catch let error as ZooKeeperError where error.code == .noNode {}  // unregistered meanwhile
        }
        return instances
    }

    /// A cache of `name`'s instances, kept up to date (see ``ServiceCache``).
    public func cache(of name: String) -> ServiceCache {
        ServiceCache(discovery: self, name: name)
    }

    static func checkNodeName(_ name: String, what: String, path: String) throws {
        if name.isEmpty || name.contains("/") || ZooKeeperPath.problem(in: "/" + name) != nil {
            throw CoordinationError(.invalidArgument, path: path, message: "invalid \(what) \"\(name)\": it must be one node name")
        }
    }
}
