import CZooKeeper

extension ZooKeeperClient {
    /// Reads the node's data and sets a one-shot watch that fires on its next change or deletion.
    /// - Throws: as ``getData(_:)``; when it throws, no watch is set.
    public func getDataAndWatch(_ path: String) async throws -> (data: NodeData, watch: NodeWatch) {
        try ZooKeeperPath.validate(path)
        let signal = OneShotSignal<WatchedEvent>()
        let data: NodeData = try await performWatching("getData", path: path, kind: .data, deliver: { signal.deliver($0) }) { handle, watcher, box in
            path.withCString { cPath in
                zoo_awget(handle, cPath, nodeWatcher, watcher, dataCompletion, box)
            }
        }
        return (data, NodeWatch(signal: signal))
    }

    /// Reads the node's ``Stat`` (`nil` if missing) and sets a one-shot watch that fires when the
    /// node is created, changed or deleted.
    public func existsAndWatch(_ path: String) async throws -> (stat: Stat?, watch: NodeWatch) {
        try ZooKeeperPath.validate(path)
        let signal = OneShotSignal<WatchedEvent>()
        let stat: Stat? = try await performWatching("exists", path: path, kind: .data, deliver: { signal.deliver($0) }) { handle, watcher, box in
            path.withCString { cPath in
                zoo_awexists(handle, cPath, nodeWatcher, watcher, existsCompletion, box)
            }
        }
        return (stat, NodeWatch(signal: signal))
    }

    /// Reads the node's children and sets a one-shot watch that fires when a child is added or
    /// removed, or the node is deleted.
    public func getChildrenAndWatch(_ path: String) async throws -> (children: NodeChildren, watch: NodeWatch) {
        try ZooKeeperPath.validate(path)
        let signal = OneShotSignal<WatchedEvent>()
        let children: NodeChildren = try await performWatching("getChildren", path: path, kind: .children, deliver: { signal.deliver($0) }) { handle, watcher, box in
            path.withCString { cPath in
                zoo_awget_children2(handle, cPath, nodeWatcher, watcher, childrenCompletion, box)
            }
        }
        return (children, NodeWatch(signal: signal))
    }

    /// The node's data as a level-triggered stream of snapshots: the current one first, then one
    /// after every change, ``DataUpdate/noNode`` while the node does not exist, and a fresh snapshot
    /// after every reconnect and every new session. See ``DataUpdates``.
    public func dataUpdates(_ path: String) -> DataUpdates {
        DataUpdates(client: self, path: path)
    }

    /// The node's children as a level-triggered stream of snapshots. See ``ChildrenUpdates``.
    public func childrenUpdates(_ path: String) -> ChildrenUpdates {
        ChildrenUpdates(client: self, path: path)
    }
}

/// One snapshot of ``ZooKeeperClient/dataUpdates(_:)``.
public enum DataUpdate: Sendable, Hashable {
    /// The node exists with this data.
    case data(NodeData)
    /// The node does not exist (it was deleted, or was never created).
    case noNode
}

/// One snapshot of ``ZooKeeperClient/childrenUpdates(_:)``.
public enum ChildrenUpdate: Sendable, Hashable {
    /// The node exists with these children.
    case children(NodeChildren)
    /// The node does not exist.
    case noNode
}

/// A node's data as an `AsyncSequence` of snapshots that re-arms its watch after every event.
///
/// - Yields the current snapshot first, then one per change (changes that happen while the watch
///   is being re-armed are coalesced into the next snapshot, whose ``Stat`` shows them).
/// - Keeps working across disconnects (the C client keeps the watch; a fresh snapshot is yielded
///   after the reconnect) and across session expiry (the watch is set again on the new session and
///   a fresh snapshot yielded).
/// - Throws `.closed` when the client closes, and errors such as `.noAuth` or `.invalidPath` that
///   retrying cannot fix. Stops when the consuming task is cancelled.
public struct DataUpdates: AsyncSequence, Sendable {
    public typealias Element = DataUpdate
    let client: ZooKeeperClient
    let path: String

    public typealias Failure = any Error

    /// Iterates the snapshots; each iterator follows the node on its own.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<DataUpdate, any Error>.AsyncIterator

        /// The next snapshot; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> DataUpdate? { try await base.next() }

        /// The next snapshot, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> DataUpdate? {
            try await base.next(isolation: actor)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        let client = self.client
        let path = self.path
        let stream = LevelTriggeredWatch<DataUpdate>.nodeStream(client: client, path: path, kind: .data) { armed, deliver in
            try await client.performWatching("getData", path: path, kind: .data, armed: armed, deliver: deliver) { handle, watcher, box in
                path.withCString { cPath in
                    zoo_awget(handle, cPath, nodeWatcher, watcher, dataCompletion, box)
                }
            }
        } read: {
            try await client.getData(path)
        } snapshot: { data in
            data.map(DataUpdate.data) ?? .noNode
        }
        return AsyncIterator(base: stream.makeAsyncIterator())
    }
}

/// A node's children as an `AsyncSequence` of snapshots; behaves like ``DataUpdates``.
public struct ChildrenUpdates: AsyncSequence, Sendable {
    public typealias Element = ChildrenUpdate
    let client: ZooKeeperClient
    let path: String

    public typealias Failure = any Error

    /// Iterates the snapshots; each iterator follows the node on its own.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<ChildrenUpdate, any Error>.AsyncIterator

        /// The next snapshot; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> ChildrenUpdate? { try await base.next() }

        /// The next snapshot, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> ChildrenUpdate? {
            try await base.next(isolation: actor)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        let client = self.client
        let path = self.path
        let stream = LevelTriggeredWatch<ChildrenUpdate>.nodeStream(client: client, path: path, kind: .children) { armed, deliver in
            try await client.performWatching("getChildren", path: path, kind: .children, armed: armed, deliver: deliver) { handle, watcher, box in
                path.withCString { cPath in
                    zoo_awget_children2(handle, cPath, nodeWatcher, watcher, childrenCompletion, box)
                }
            }
        } read: {
            try await client.getChildren(path)
        } snapshot: { children in
            children.map(ChildrenUpdate.children) ?? .noNode
        }
        return AsyncIterator(base: stream.makeAsyncIterator())
    }
}

/// The re-arm loop behind ``DataUpdates`` and ``ChildrenUpdates``.
enum LevelTriggeredWatch<Snapshot: Sendable> {
    typealias Deliver = @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void

    enum Wake: Sendable {
        case watchFired(token: Int, Result<WatchedEvent, ZooKeeperError>)
        case session(SessionState)
        case retry
    }

    /// The stream of one node's state: `readAndWatch` reads it and sets a watch of `kind`; while
    /// the node does not exist, an existence watch waits for its creation and `snapshot(nil)` is
    /// yielded.
    static func nodeStream<Value: Sendable>(
        client: ZooKeeperClient, path: String, kind: WatchKind,
        readAndWatch: @escaping @Sendable (ArmedWatch, @escaping Deliver) async throws -> Value,
        read: @escaping @Sendable () async throws -> Value,
        snapshot: @escaping @Sendable (Value?) -> Snapshot
    ) -> AsyncThrowingStream<Snapshot, any Error> {
        stream(client: client, path: path) { armed, deliver in
            do {
                return snapshot(try await readAndWatch(armed, deliver))
            } catch let error as ZooKeeperError where error.code == .noNode {
                let stat: Stat? = try await client.performWatching("exists", path: path, kind: .data, armed: armed, deliver: deliver) { handle, watcher, box in
                    path.withCString { cPath in
                        zoo_awexists(handle, cPath, nodeWatcher, watcher, existsCompletion, box)
                    }
                }
                // Created between the two reads: read again now (the exists watch stays armed).
                return stat == nil ? snapshot(nil) : nil
            }
        } read: {
            do {
                return snapshot(try await read())
            } catch let error as ZooKeeperError where error.code == .noNode {
                return snapshot(nil)
            }
        }
    }

    /// - Parameters:
    ///   - readAndWatch: reads and sets a watch whose outcome goes to `deliver`, recording it in
    ///     the `ArmedWatch`; returns `nil` to ask for an immediate re-read.
    ///   - read: reads without setting a watch (after a reconnect, while the watch is still set).
    ///
    /// When the stream ends (its consumer is cancelled or stops iterating, or an error ends it),
    /// the watch it armed last is withdrawn, from the server too when no other watch of this
    /// client is on the path (``ZooKeeperClient/withdrawWatch(_:)``).
    static func stream(
        client: ZooKeeperClient, path: String,
        readAndWatch: @escaping @Sendable (ArmedWatch, @escaping Deliver) async throws -> Snapshot?,
        read: @escaping @Sendable () async throws -> Snapshot
    ) -> AsyncThrowingStream<Snapshot, any Error> {
        let (stream, output) = AsyncThrowingStream<Snapshot, any Error>.makeStream(bufferingPolicy: .unbounded)
        let producer = Task {
            let armed = ArmedWatch()
            defer { if let box = armed.take() { client.withdrawWatch(box) } }
            do {
                try ZooKeeperPath.validate(path)
                try await run(client: client, readAndWatch: { try await readAndWatch(armed, $0) }, read: read, output: output)
            } catch is CancellationError {
                output.finish()
            } catch {
                output.finish(throwing: error)
            }
        }
        output.onTermination = { _ in producer.cancel() }
        return stream
    }

    private static func run(
        client: ZooKeeperClient,
        readAndWatch: @escaping @Sendable (@escaping Deliver) async throws -> Snapshot?,
        read: @escaping @Sendable () async throws -> Snapshot,
        output: AsyncThrowingStream<Snapshot, any Error>.Continuation
    ) async throws {
        let (wakes, wake) = AsyncStream<Wake>.makeStream(bufferingPolicy: .unbounded)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await state in client.sessionEvents { wake.yield(.session(state)) }
            }
            defer { group.cancelAll() }

            var needsWatch = true  // no watch of ours is registered on the current session
            var needsRead = false  // the watch is in place; a fresh snapshot is owed (after a reconnect)
            var armedGeneration = 0
            var disconnected = false
            var wakeIterator = wakes.makeAsyncIterator()
            /// A token per armed watch: wakes from older watches are ignored.
            var armToken = 0

            while true {
                try Task.checkCancellation()
                if needsWatch {
                    armToken += 1
                    let token = armToken
                    do {
                        let snapshot = try await readAndWatch { result in
                            wake.yield(.watchFired(token: token, result))
                        }
                        guard let snapshot else { continue }
                        needsWatch = false
                        needsRead = false
                        disconnected = false  // this snapshot is already fresher than any reconnect seen so far
                        armedGeneration = client.state.session?.generation ?? armedGeneration
                        output.yield(snapshot)
                    } catch let error as ZooKeeperError where error.code == .closed {
                        throw error
                    } catch let error as ZooKeeperError where error.isTransient || error.code == .invalidState || error.code == .sessionMoved
                    {
                        // Not connected: retry when the session changes, or in a second at the latest.
                        scheduleRetry(wake)
                    }
                } else if needsRead {
                    // Same session after a reconnect: the C client kept our watch; hand out a fresh snapshot.
                    do {
                        output.yield(try await read())
                        needsRead = false
                    } catch let error as ZooKeeperError where error.isTransient || error.code == .invalidState || error.code == .sessionMoved {
                        scheduleRetry(wake)
                    }
                }
                guard let next = await wakeIterator.next() else { throw CancellationError() }
                switch next {
                case .retry:
                    continue
                case .watchFired(let token, let result):
                    guard token == armToken else { continue }  // a watch we no longer wait for
                    if case .failure(let error) = result, error.code == .closed { throw error }
                    needsWatch = true
                case .session(let state):
                    switch state {
                    case .closed:
                        throw ZooKeeperError.closed()
                    case .authFailed:
                        throw ZooKeeperError(.authFailed, message: "authentication failed")
                    case .expired where !client.configuration.reconnectAfterExpiry:
                        // The client opens no new session: nothing will be watched again.
                        throw ZooKeeperError(.sessionExpired, message: "the session expired and the client does not open another (reconnectAfterExpiry is off)")
                    case .suspended, .presumedExpired, .expired:
                        disconnected = true
                    case .newSession(let info):
                        if info.generation != armedGeneration { needsWatch = true }
                    case .connected(let info), .readOnly(let info):
                        guard disconnected else { continue }
                        disconnected = false
                        if info.generation != armedGeneration { needsWatch = true } else { needsRead = true }
                    case .connecting:
                        continue
                    }
                }
            }
        }
    }

    private static func scheduleRetry(_ wake: AsyncStream<Wake>.Continuation) {
        Task {
            try? await Task.sleep(for: .milliseconds(500))
            wake.yield(.retry)
        }
    }
}
