import Synchronization
import ZooKeeper

/// One service's instances, kept up to date by a ``TreeCache`` of the service's node (Curator's
/// `ServiceCache`): each document is parsed once, when it changes, so reading the instances costs
/// a lock and a copy once the cache is initialized.
///
/// A node whose document does not parse is not an instance: it is reported in
/// ``undecodable()`` (and the change stream goes on), never dropped silently.
public final class ServiceCache: Sendable {
    /// The discovery it belongs to.
    public let discovery: ServiceDiscovery
    /// The service's name.
    public let name: String
    let tree: TreeCache

    private struct State {
        /// Instance node path → the parsed document (or why it does not parse).
        var documents: [String: Result<ServiceInstance, ZooKeeperError>] = [:]
        /// The instances by id, rebuilt after every change.
        var instances: [ServiceInstance] = []
        var initialized = false
        var follower: Task<Void, Never>?
        var ended: (any Error)?
        var subscribers = Subscribers<AsyncThrowingStream<[ServiceInstance], any Error>.Continuation>()
    }
    private let state = Mutex(State())
    /// Set once: when the instances were read once, or with what ended the cache before.
    private let initialRead = Latch<Result<Void, any Error>>()

    init(discovery: ServiceDiscovery, name: String) {
        self.discovery = discovery
        self.name = name
        tree = TreeCache(client: discovery.client, path: discovery.servicePath(name), maxDepth: 1)
    }

    /// Starts reading and following the instances (idempotent).
    public func start() {
        let events = state.withLock { state -> TreeCacheEvents? in
            guard state.follower == nil, state.ended == nil else { return nil }
            return tree.events()
        }
        guard let events else { return }
        tree.start()
        let root = tree.path
        let follower = Task { [weak self] in
            do {
                for try await event in events {
                    guard let self else { return }
                    self.apply(event)
                }
                self?.end(CoordinationError(.closed, path: root, message: "the service cache is closed"))
            } catch {
                self?.end(error)
            }
        }
        state.withLock { $0.follower = follower }
    }

    /// Waits until the instances have been read once.
    /// - Throws: ``CoordinationError/Code/closed`` after ``close()``; `.closed` when the client
    ///   closes; `CancellationError` when the waiting task is cancelled.
    public func waitUntilInitialized() async throws {
        guard let result = await initialRead.wait() else { throw CancellationError() }
        try result.get()
    }

    /// Stops following (withdraws its watches) and ends the change streams.
    public func close() async {
        await tree.close()
        let follower = state.withLock { $0.follower }
        await follower?.value
        end(CoordinationError(.closed, path: tree.path, message: "the service cache is closed"))
    }

    /// The instances now, by id.
    public func instances() -> [ServiceInstance] {
        state.withLock { $0.instances }
    }

    /// The nodes that do not hold an instance document, with the reason.
    public func undecodable() -> [ZooKeeperError] {
        state.withLock { state in
            state.documents.sorted { $0.key < $1.key }.compactMap { _, result in
                if case .failure(let error) = result { return error }
                return nil
            }
        }
    }

    /// The instances after every change (the first element once initialized); ends after
    /// ``close()``, throws what ended the cache otherwise.
    public func changes() -> AsyncThrowingStream<[ServiceInstance], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[ServiceInstance], any Error>.makeStream(bufferingPolicy: .unbounded)
        let id: Int? = state.withLock { state in
            if state.initialized { continuation.yield(state.instances) }
            if let ended = state.ended {
                if ended is CoordinationError { continuation.finish() } else { continuation.finish(throwing: ended) }
                return nil
            }
            return state.subscribers.add(continuation)
        }
        if let id {
            continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.remove(id) } }
        }
        return stream
    }

    /// Parses what changed and publishes the new instance list.
    private func apply(_ event: TreeCacheEvent) {
        let root = tree.path
        var parsed: Result<ServiceInstance, ZooKeeperError>?
        switch event {
        case .created(let path, let node), .changed(let path, let node):
            guard path != root else { return }
            parsed = Result { () throws(ZooKeeperError) -> ServiceInstance in try ServiceInstance(curatorJSON: node.bytes, path: path) }
        case .deleted, .initialized:
            break
        }
        let nowInitialized = state.withLock { state -> Bool in
            switch event {
            case .created(let path, _), .changed(let path, _):
                state.documents[path] = parsed
            case .deleted(let path, _):
                guard state.documents.removeValue(forKey: path) != nil else { return false }
            case .initialized:
                state.initialized = true
            }
            state.instances = state.documents.values.compactMap { try? $0.get() }.sorted { $0.id < $1.id }
            guard state.initialized else { return false }
            for subscriber in state.subscribers.all { subscriber.yield(state.instances) }
            return event == .initialized
        }
        if nowInitialized { initialRead.set(.success(())) }
    }

    private func end(_ error: any Error) {
        let subscribers = state.withLock { state in
            if state.ended == nil { state.ended = error }
            return state.subscribers.takeAll()
        }
        for subscriber in subscribers {
            if error is CoordinationError { subscriber.finish() } else { subscriber.finish(throwing: error) }
        }
        initialRead.set(.failure(error))
    }
}
