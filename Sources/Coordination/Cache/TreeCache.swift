import Synchronization
import ZooKeeper

/// A cache of every node under a path, to a depth: the data of each node, kept up to date with
/// one watch per node and kind (Curator's `TreeCache`/`CuratorCache`, kazoo's `TreeCache`).
///
/// - ``start()`` reads the tree (breadth first, hundreds of nodes' reads pipelined), then
///   follows it: a data change re-reads that node's data; a children change re-reads that
///   node's children and reads only the new ones. The work per change is bounded by the change,
///   never a re-read of the tree.
/// - ``events()`` streams ``TreeCacheEvent``s in order: what is there (`created`, parents first)
///   and ``TreeCacheEvent/initialized``, then every change. ``snapshot()`` is the whole tree at
///   any time, consistent with the events delivered so far.
/// - Across a lost connection the watches stay (the server re-registers them); after a session
///   expiry the tree is read again and exactly the differences are reported.
/// - ``close()`` withdraws its watches from the server and ends the event streams. A started
///   cache runs until then (or until its client closes): dropping the last reference to it does
///   not stop it.
///
/// ```swift
/// let cache = TreeCache(client: client, path: "/config", maxDepth: 2)
/// cache.start()
/// for try await event in cache.events() {
///     print(event)
/// }
/// ```
public final class TreeCache: Sendable {
    /// The client the cache reads with.
    public let client: ZooKeeperClient
    /// The root of the subtree.
    public let path: String
    /// How deep children are followed (the root is at depth 0). Default: without limit.
    public let maxDepth: Int

    private struct WatchKey: Hashable {
        var path: String
        var children: Bool
    }

    private struct Shared {
        var state: TreeCacheState
        var initialized = false
        var closed: (any Error)?
        var subscribers = Subscribers<AsyncThrowingStream<TreeCacheEvent, any Error>.Continuation>()
        var watches: [WatchKey: WatchToken] = [:]
        var loop: Task<Void, Never>?
    }
    private let shared: Mutex<Shared>
    /// Set once: when the initial read is complete, or with what ended the cache before.
    private let initialRead = Latch<Result<Void, any Error>>()
    private let wakes: AsyncStream<Wake>
    private let wake: AsyncStream<Wake>.Continuation

    /// What makes the cache read again.
    private enum Wake: Sendable {
        case data(String)
        case deleted(String)
        case children(String)
        case session(SessionState)
    }

    /// A cache of `path` and, down to `maxDepth` levels, what is below it (nothing is read until
    /// ``start()``).
    public init(client: ZooKeeperClient, path: String, maxDepth: Int = .max) {
        self.client = client
        self.path = path
        self.maxDepth = maxDepth
        shared = Mutex(Shared(state: TreeCacheState(root: path, maxDepth: maxDepth)))
        (wakes, wake) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    // MARK: - Using it

    /// Starts reading and following the tree (idempotent).
    public func start() {
        shared.withLock { shared in
            guard shared.loop == nil, shared.closed == nil else { return }
            // On the client's completion thread: a change is read and applied between replies,
            // without a hop to the cooperative pool and back per read.
            shared.loop = Task(executorPreference: ZooKeeperClient.completionExecutor) { [weak self] in await self?.run() }
        }
    }

    /// Stops following the tree: withdraws its watches (from the server too) and ends the event
    /// streams (they finish without error).
    public func close() async {
        let (loop, watches, subscribers) = shared.withLock { shared in
            if shared.closed == nil { shared.closed = CoordinationError(.closed, path: path, message: "the tree cache is closed") }
            defer { shared.watches.removeAll() }
            return (shared.loop, Array(shared.watches.values), shared.subscribers.takeAll())
        }
        loop?.cancel()
        wake.finish()
        await loop?.value
        for token in watches { client.withdraw(token) }
        for subscriber in subscribers { subscriber.finish() }
        initialRead.set(.failure(CoordinationError(.closed, path: path, message: "the tree cache is closed")))
    }

    /// Every node of the tree now (path → data), consistent with the events delivered so far.
    public func snapshot() -> [String: NodeData] {
        shared.withLock { $0.state.nodes }
    }

    /// The data of the node at `path`, if the cache has it.
    public func node(at path: String) -> NodeData? {
        shared.withLock { $0.state.nodes[path] }
    }

    /// The names of the children of `path`, if the cache follows them.
    public func children(of path: String) -> [String]? {
        shared.withLock { $0.state.children[path].map { $0.sorted() } }
    }

    /// Whether the initial read is complete.
    public var isInitialized: Bool { shared.withLock { $0.initialized } }

    /// Waits until the initial read is complete.
    /// - Throws: what ended the cache (`.closed` when the client closes), or
    ///   ``CoordinationError/Code/closed`` after ``close()``; `CancellationError` when the waiting
    ///   task is cancelled.
    public func waitUntilInitialized() async throws {
        guard let result = await initialRead.wait() else { throw CancellationError() }
        try result.get()
    }

    /// The tree's events: what is there (`created`, parents first) and
    /// ``TreeCacheEvent/initialized`` once the initial read is complete, then every change. Ends
    /// after ``close()``; throws `.closed` when the client closes. Each call is a subscriber of
    /// its own with an unbounded buffer.
    public func events() -> TreeCacheEvents {
        let (stream, continuation) = AsyncThrowingStream<TreeCacheEvent, any Error>.makeStream(bufferingPolicy: .unbounded)
        let id: Int? = shared.withLock { shared in
            for event in shared.state.creations { continuation.yield(event) }
            if shared.initialized { continuation.yield(.initialized) }
            if let closed = shared.closed {
                if closed is CoordinationError { continuation.finish() } else { continuation.finish(throwing: closed) }
                return nil
            }
            return shared.subscribers.add(continuation)
        }
        if let id {
            continuation.onTermination = { [weak self] _ in _ = self?.shared.withLock { $0.subscribers.remove(id) } }
        }
        return TreeCacheEvents(base: stream)
    }

    // MARK: - Following the tree

    private func run() async {
        let sessions = Task { [client, wake] in
            for await state in client.sessionEvents { wake.yield(.session(state)) }
        }
        defer { sessions.cancel() }
        do {
            try await loadInitially()
            var generation = client.state.session?.generation
            // Refreshes cut off by a session presumed lost: their watch fired and is not set
            // again. If the same session comes back (the server had not expired it), no
            // resynchronisation follows, so they are made then.
            var unfinished: [Refresh] = []
            func refreshing(_ refresh: Refresh) async throws {
                if try await !self.refresh(refresh.path, children: refresh.children), !unfinished.contains(refresh) { unfinished.append(refresh) }
            }
            for await next in wakes {
                try Task.checkCancellation()
                switch next {
                case .data(let path):
                    try await refreshing(Refresh(path: path, children: false))
                case .deleted(let path):
                    // The event says it all: no read (the parent's children watch fires too, and
                    // its read brings the node back if it was created again meanwhile).
                    forgetWatches(under: path)
                    apply { state in state.nodeMissing(path) }
                    // The root is watched for its creation (the read finds it missing and sets the watch).
                    if path == self.path { try await refreshing(Refresh(path: path, children: false)) }
                case .children(let path):
                    try await refreshing(Refresh(path: path, children: true))
                case .session(.connected(let info)) where info.generation == generation && !unfinished.isEmpty:
                    let again = unfinished
                    unfinished = []
                    for refresh in again { try await refreshing(refresh) }
                case .session(.newSession(let info)) where info.generation != generation:
                    generation = info.generation
                    unfinished = []  // the resynchronisation reads everything
                    try await resynchronize()
                case .session(.closed):
                    throw ZooKeeperError(.closed, path: path, message: "the client is closed")
                case .session:
                    continue
                }
            }
        } catch is CancellationError {
        } catch {
            end(throwing: error)
        }
    }

    /// Ends the cache after an error that waiting cannot mend (the client closed).
    private func end(throwing error: any Error) {
        let subscribers = shared.withLock { shared in
            shared.closed = error
            return shared.subscribers.takeAll()
        }
        for subscriber in subscribers { subscriber.finish(throwing: error) }
        initialRead.set(.failure(error))
    }

    /// Applies a change to the shared state and hands its events to every subscriber, under one
    /// lock, so that the snapshot and the events agree.
    private func apply(_ change: (inout TreeCacheState) -> [TreeCacheEvent]) {
        shared.withLock { shared in
            let events = change(&shared.state)
            guard !events.isEmpty else { return }
            for subscriber in shared.subscribers.all {
                for event in events { subscriber.yield(event) }
            }
        }
    }

    /// The first read of the tree, breadth first, into the shared state (its events go out as
    /// the nodes arrive). When a read is cut off (a lost connection, an expiry), the tree is read
    /// again and only the differences from what was already reported go out.
    private func loadInitially() async throws {
        do {
            try await readSubtrees([path]) { change in self.apply(change) }
        } catch let error as ZooKeeperError where error.isTransient {
            try await client.waitUntilConnected()
            try await resynchronize()
        }
        shared.withLock { shared in
            shared.initialized = true
            for subscriber in shared.subscribers.all { subscriber.yield(.initialized) }
        }
        initialRead.set(.success(()))
    }

    /// After a new session (every watch gone): reads the whole tree again into a fresh state,
    /// then reports exactly how it differs from what the cache had.
    private func resynchronize() async throws {
        while true {
            do {
                var fresh = TreeCacheState(root: path, maxDepth: maxDepth)
                try await readSubtrees([path]) { change in _ = change(&fresh) }
                apply { state in
                    let events = TreeCacheState.differences(from: state, to: fresh)
                    state = fresh
                    return events
                }
                return
            } catch let error as ZooKeeperError where error.isTransient {
                try await client.waitUntilConnected()
            }
        }
    }

    /// How many nodes' reads a tree read keeps in flight (a data and a children read each).
    static let readWindow = 2000

    /// Reads the subtrees under `paths`: the data and (where followed) the children of every node,
    /// setting watches, with up to ``readWindow`` nodes' reads in flight; the children of a node
    /// are sent for as soon as its children are known (no wait for the rest of its level).
    /// Applies what it reads through `record`, a parent always before its children. A missing
    /// root is watched for its creation.
    private func readSubtrees(_ paths: [String], record: (_ change: (inout TreeCacheState) -> [TreeCacheEvent]) -> Void) async throws {
        typealias InFlight = (path: String, data: PendingWatchedReply<NodeData>, children: PendingWatchedReply<NodeChildren>?)
        var waiting = paths[...]
        var inFlight: [InFlight] = []
        var oldest = 0
        func submitMore() {
            let room = Self.readWindow - (inFlight.count - oldest)
            guard room > 0, !waiting.isEmpty else { return }
            let batch = waiting.prefix(room)
            waiting = waiting.dropFirst(batch.count)
            let follows = shared.withLock { shared in batch.map(shared.state.followsChildren(of:)) }
            for (path, followsChildren) in zip(batch, follows) {
                inFlight.append((
                    path, client.submitGetDataAndWatch(path, deliver: watchDelivery(path)),
                    followsChildren ? client.submitGetChildrenAndWatch(path, deliver: watchDelivery(path)) : nil))
            }
        }
        submitMore()
        while oldest < inFlight.count {
            let (path, dataReply, childrenReply) = inFlight[oldest]
            oldest += 1
            do {
                defer { submitMore() }
                do {
                    let (node, token) = try await dataReply.value()
                    remember(token, for: WatchKey(path: path, children: false))
                    record { state in state.dataRead(node, at: path).map { [$0] } ?? [] }
                } catch let error as ZooKeeperError where error.code == .noNode {
                    _ = try? await childrenReply?.value()
                    if path == self.path { try await watchForCreation() }
                    record { state in state.nodeMissing(path) }
                    continue
                }
                guard let childrenReply else { continue }
                do {
                    let (children, token) = try await childrenReply.value()
                    remember(token, for: WatchKey(path: path, children: true))
                    var added: [String] = []
                    record { state in
                        let (events, new) = state.childrenRead(children.names, at: path)
                        added = new
                        return events
                    }
                    waiting.append(contentsOf: added)
                } catch let error as ZooKeeperError where error.code == .noNode {
                    record { state in state.nodeMissing(path) }
                }
            } catch {
                // Cut off: settle every read still out, so that each watch the server did set is
                // remembered (to be replaced or withdrawn later) and none is left unaccounted for.
                _ = try? await childrenReply?.value()
                for (path, data, children) in inFlight[oldest...] {
                    if let (_, token) = try? await data.value() { remember(token, for: WatchKey(path: path, children: false)) }
                    if let (_, token) = try? await children?.value() { remember(token, for: WatchKey(path: path, children: true)) }
                }
                throw error
            }
            if oldest >= 4 * Self.readWindow {
                inFlight.removeFirst(oldest)
                oldest = 0
            }
        }
    }

    /// A watch on a missing root, that wakes the cache when the root is created.
    private func watchForCreation() async throws {
        let (stat, watch) = try await client.existsAndWatch(path)
        if stat != nil {
            wake.yield(.data(path))
            return
        }
        let (wake, root) = (self.wake, path)
        Task {
            if (try? await watch.triggered()) != nil { wake.yield(.data(root)) }
        }
    }

    /// A node's data or children to read again.
    private struct Refresh: Equatable {
        var path: String
        var children: Bool
    }

    /// Re-reads one node after its watch fired: its data, or its children (and then reads the new
    /// children). A node that appears (the root) gets its children read too. Returns `false` when
    /// the session was presumed lost before it was done.
    private func refresh(_ path: String, children: Bool) async throws -> Bool {
        do {
            try await client.withRetry(.untilSessionLost) {
                var frontier: [String]
                if children {
                    frontier = try await refreshChildren(of: path)
                } else {
                    let wasKnown = shared.withLock { $0.state.nodes[path] != nil }
                    let reply = client.submitGetDataAndWatch(path, deliver: watchDelivery(path))
                    do {
                        let (node, token) = try await reply.value()
                        remember(token, for: WatchKey(path: path, children: false))
                        apply { state in state.dataRead(node, at: path).map { [$0] } ?? [] }
                    } catch let error as ZooKeeperError where error.code == .noNode {
                        forgetWatches(under: path)
                        apply { state in state.nodeMissing(path) }
                        if path == self.path { try await watchForCreation() }
                        return
                    }
                    let follows = shared.withLock { $0.state.followsChildren(of: path) && $0.state.nodes[path] != nil }
                    frontier = !wasKnown && follows ? try await refreshChildren(of: path) : []
                }
                if !frontier.isEmpty { try await readSubtrees(frontier) { change in self.apply(change) } }
            }
            return true
        } catch let error as ZooKeeperError where error.isTransient || error.code == .invalidState {
            // The session may be lost: a new session's resynchronisation reads everything again,
            // and if the same session comes back, the caller refreshes this again.
            return false
        }
    }

    /// Reads the children of `path` (setting a watch) and applies them; the new children to read.
    private func refreshChildren(of path: String) async throws -> [String] {
        guard shared.withLock({ $0.state.followsChildren(of: path) && $0.state.nodes[path] != nil }) else { return [] }
        let reply = client.submitGetChildrenAndWatch(path, deliver: watchDelivery(path))
        do {
            let (children, token) = try await reply.value()
            remember(token, for: WatchKey(path: path, children: true))
            var added: [String] = []
            apply { state in
                let (events, new) = state.childrenRead(children.names, at: path)
                added = new
                return events
            }
            return added
        } catch let error as ZooKeeperError where error.code == .noNode {
            forgetWatches(under: path)
            apply { state in state.nodeMissing(path) }
            return []
        }
    }

    /// What a fired watch of `path` makes the cache do.
    private func watchDelivery(_ path: String) -> @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void {
        let wake = self.wake
        return { result in
            guard case .success(let event) = result else { return }  // expiry and close come as session events
            switch event.kind {
            case .nodeChildrenChanged: wake.yield(.children(path))
            case .nodeDeleted: wake.yield(.deleted(path))
            case .nodeDataChanged, .nodeCreated: wake.yield(.data(path))
            }
        }
    }

    /// Keeps the token of a watch just set. A watch it replaces is withdrawn: one that fired
    /// needs nothing, but one still set (read again after a cut-off read) would otherwise stay on
    /// the server after ``close()``.
    private func remember(_ token: WatchToken, for key: WatchKey) {
        let replaced = shared.withLock { $0.watches.updateValue(token, forKey: key) }
        if let replaced, replaced != token { client.withdraw(replaced) }
    }

    /// Forgets the watches of a deleted subtree (they fired with the deletion).
    private func forgetWatches(under path: String) {
        shared.withLock { shared in
            shared.watches = shared.watches.filter { key, _ in key.path != path && !key.path.hasPrefix(path == "/" ? "/" : path + "/") }
        }
    }
}

/// A ``TreeCache``'s events over time (see ``TreeCache/events()``).
public struct TreeCacheEvents: AsyncSequence, Sendable {
    public typealias Element = TreeCacheEvent
    public typealias Failure = any Error
    let base: AsyncThrowingStream<TreeCacheEvent, any Error>

    /// Iterates the events of one subscription.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<TreeCacheEvent, any Error>.AsyncIterator

        /// The next event; `nil` after ``TreeCache/close()`` or when the consuming task is cancelled.
        public mutating func next() async throws -> TreeCacheEvent? { try await base.next() }

        /// The next event, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> TreeCacheEvent? {
            try await base.next(isolation: actor)
        }
    }

    /// Starts iterating the subscription.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator())
    }
}
