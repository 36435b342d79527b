import Synchronization
import ZooKeeper

/// A node kept in place: created at ``start()``, and created again, with its latest data, whenever
/// it goes (its session expired, someone deleted it), until ``close()`` (Curator's
/// `PersistentNode`). ``states()`` says when it is (not) in place.
///
/// - ``Mode/ephemeral``: the node lives with the session and comes back on every new session.
/// - ``Mode/ttl(_:)``: a persistent node with a time to live, kept alive by touching it every
///   half TTL; after ``close()`` (or when this process dies) the server deletes it once the TTL has
///   passed. Needs a server with `zookeeper.extendedTypesEnabled=true`. (Curator's
///   `PersistentTtlNode` keeps a container with a `touch` child instead: the two do not share a path.)
///
/// A node another live session holds is not taken over (Curator's `PersistentNode` would write
/// its data into it): it waits until that node goes, then creates its own.
///
/// An error that trying again cannot mend ends the keeping (an invalid path, a refusal by an ACL,
/// TTL nodes disabled on the server): ``states()`` and ``waitUntilInPlace()`` throw it.
///
/// ```swift
/// let node = PersistentNode(client: client, path: "/services/api/host-7", data: Array("10.0.0.7:8080".utf8))
/// node.start()
/// try await node.waitUntilInPlace()
/// ```
public final class PersistentNode: Sendable {
    /// How the node is created.
    public enum Mode: Sendable, Hashable {
        /// An ephemeral node.
        case ephemeral
        /// A persistent node that the server deletes after this long without a write.
        case ttl(Duration)
    }

    /// The client the node is kept with.
    public let client: ZooKeeperClient
    /// The node.
    public let path: String
    /// How it is created.
    public let mode: Mode

    private struct State {
        var data: [UInt8]
        var inPlace = false
        var closed = false
        /// How the keeping ended, once the streams are finished: `nil` while it goes on.
        var ending: Ending?
        var task: Task<Void, Never>?
        var subscribers = Subscribers<AsyncThrowingStream<Bool, any Error>.Continuation>()
        /// The session that created or adopted the node (an ephemeral node goes with it).
        var session: Int64?
        /// Set to make the keeper look again (a new session, data written while it was absent).
        var nudged = Latch<Void>()
    }
    private let state: Mutex<State>

    private enum Ending {
        /// By ``close()``: the streams finish.
        case closed
        /// By an error retrying cannot mend: the streams throw it.
        case failed(ZooKeeperError)
    }

    /// A node at `path` with `data` (nothing is written until ``start()``).
    public init(client: ZooKeeperClient, path: String, mode: Mode = .ephemeral, data: [UInt8] = []) {
        self.client = client
        self.path = path
        self.mode = mode
        state = Mutex(State(data: data))
    }

    /// Starts keeping the node in place (idempotent). It is kept until ``close()`` (or until the
    /// client closes, or an error that trying again cannot mend ends it): dropping the last
    /// reference does not stop it. A keeper that ended is not started again: make a new one.
    public func start() {
        state.withLock { state in
            guard state.task == nil, !state.closed else { return }
            state.task = Task { [weak self] in await self?.keep() }
        }
    }

    /// Stops keeping the node and deletes it (a TTL node is left to expire).
    public func close() async {
        let task = state.withLock { state in
            state.closed = true
            return state.task
        }
        task?.cancel()
        await task?.value
        if case .ephemeral = mode, let stat = try? await client.exists(path), stat.ephemeralOwner == client.state.session?.sessionID {
            _ = try? await client.deleteIfExists(path, version: stat.version)  // ours only: never another session's node
        }
        setInPlace(false)
        let subscribers = state.withLock { state in
            state.ending = .closed
            return state.subscribers.takeAll()
        }
        for subscriber in subscribers { subscriber.finish() }
    }

    /// Replaces the node's data now, and for every time it is created again. Only a node this
    /// keeper holds is written: while another session's node is at the path (or none), the data
    /// waits for the keeper to create the node.
    public func setData(_ data: [UInt8]) async throws {
        let owner = state.withLock { state -> Int64? in
            state.data = data
            return state.inPlace ? state.session : nil
        }
        guard let owner else { return nudge() }  // not in place: the keeper creates it with the new data
        do {
            while true {
                guard let stat = try await client.exists(path), mode != .ephemeral || stat.ephemeralOwner == owner else { return nudge() }
                do {
                    // Versioned: a node replaced between the read and the write is not written.
                    _ = try await client.setData(path, data: data, version: stat.version)
                    return
                } catch let error as ZooKeeperError where error.code == .badVersion {
                    continue  // written meanwhile (a touch of a TTL node): read it again
                }
            }
        } catch let error as ZooKeeperError where error.code == .noNode || error.isTransient {
            nudge()
        }
    }

    /// Whether the node is in place now (as far as this process knows).
    public var isInPlace: Bool { state.withLock { $0.inPlace } }

    /// Whether the node is in place, now and at every change. Ends after ``close()``; throws the
    /// `ZooKeeperError` that ended the keeping, after reporting `false`: one that trying again
    /// cannot mend (`.invalidPath`, `.badArguments`, `.invalidACL`, `.noAuth`, `.authFailed`,
    /// `.unimplemented` for a TTL node on a server without extended types, `.dataTooLarge`).
    public func states() -> PersistentNodeStates {
        let (stream, continuation) = AsyncThrowingStream<Bool, any Error>.makeStream(bufferingPolicy: .unbounded)
        let id = state.withLock { state -> Int? in
            continuation.yield(state.inPlace)
            switch state.ending {
            case nil: return state.subscribers.add(continuation)
            case .closed: continuation.finish()
            case .failed(let error): continuation.finish(throwing: error)
            }
            return nil
        }
        if let id {
            continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.remove(id) } }
        }
        return PersistentNodeStates(base: stream)
    }

    /// Waits until the node is in place.
    /// - Throws: the `ZooKeeperError` that ended the keeping (see ``states()``), for example
    ///   `.invalidPath`; ``CoordinationError/Code/closed`` after ``close()``; `CancellationError`.
    public func waitUntilInPlace() async throws {
        for try await inPlace in states() where inPlace { return }
        try Task.checkCancellation()
        throw CoordinationError(.closed, path: path, message: "the persistent node was closed")
    }

    /// Whether `error` ends the keeping: trying the same request again cannot succeed until
    /// something outside this process changes (the path, the ACLs or credentials, the server's
    /// configuration, the data's size). These are `.invalidPath`, `.badArguments`, `.invalidACL`,
    /// `.noAuth`, `.authFailed`, `.unimplemented` (a TTL node on a server without
    /// `zookeeper.extendedTypesEnabled=true`) and `.dataTooLarge`. Every other error is tried
    /// again: a lost connection or session, and `.noChildrenForEphemerals` (the parent is another
    /// session's ephemeral node, which goes with that session).
    static func endsKeeping(_ error: ZooKeeperError) -> Bool {
        switch error.code {
        case .invalidPath, .badArguments, .invalidACL, .noAuth, .authFailed, .unimplemented, .dataTooLarge: return true
        default: return false
        }
    }

    /// Ends the keeping with `error`: reports the node not in place, then ends the streams with the error.
    private func fail(_ error: ZooKeeperError) {
        setInPlace(false)
        let subscribers = state.withLock { state -> [AsyncThrowingStream<Bool, any Error>.Continuation] in
            guard state.ending == nil else { return [] }
            state.ending = .failed(error)
            return state.subscribers.takeAll()
        }
        for subscriber in subscribers { subscriber.finish(throwing: error) }
    }

    private func nudge() {
        _ = state.withLock { $0.nudged }.set(())
    }

    private func setInPlace(_ inPlace: Bool) {
        state.withLock { state in
            guard state.inPlace != inPlace else { return }
            state.inPlace = inPlace
            for subscriber in state.subscribers.all { subscriber.yield(inPlace) }
        }
    }

    /// Records the node as in place, held by the session `owner`; `created` when this keeper has
    /// just created it. A node of an earlier session went with that session, and a node this
    /// keeper could create was not there, even when the keeper only learns of it by creating the
    /// new one (the session expired, or someone deleted the node, between two of its looks):
    /// subscribers see it gone, then back.
    func setInPlace(owner: Int64, created: Bool = false) {
        let replaced = state.withLock { state in
            defer { state.session = owner }
            return state.inPlace && (created || state.session != owner)
        }
        if replaced { setInPlace(false) }
        setInPlace(true)
    }

    /// Creates the node, watches it, and creates it again when it goes; touches a TTL node.
    private func keep() async {
        let sessions = Task { [client, weak self] in
            for await state in client.sessionEvents {
                if case .newSession = state { self?.nudge() }
            }
        }
        defer { sessions.cancel() }
        let toucher: Task<Void, Never>? = {
            guard case .ttl(let ttl) = mode else { return nil }
            return Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: ttl / 2)
                    guard let self, self.isInPlace else { continue }
                    _ = try? await self.client.setData(self.path, data: self.state.withLock { $0.data })
                }
            }
        }()
        defer { toucher?.cancel() }
        var failures = 0
        while !Task.isCancelled {
            // An ephemeral node of an earlier session is gone with it, whatever told us of the new session.
            if case .ephemeral = mode, state.withLock({ $0.inPlace && $0.session != client.state.session?.sessionID }) {
                setInPlace(false)
            }
            do {
                try await ensureCreated()
                let (stat, watch) = try await client.existsAndWatch(path)
                guard stat != nil else { setInPlace(false); continue }
                if await waitForChange(watch) == .gone { setInPlace(false) }
            } catch let error as ZooKeeperError where error.code == .closed {
                setInPlace(false)
                return
            } catch let error as ZooKeeperError where Self.endsKeeping(error) {
                fail(error)
                return
            } catch let error as ZooKeeperError where error.isRetryable {
                // A lost connection: the node is still there as long as the session lasts.
                if (try? await client.waitUntilConnected()) == nil { return }
            } catch {
                // The session expired (an ephemeral node went with it, a TTL node stays), or a
                // refusal that can mend (an ephemeral parent of another session): try again, backing off.
                if mode == .ephemeral || (error as? ZooKeeperError)?.code != .sessionExpired { setInPlace(false) }
                failures += 1
                try? await Task.sleep(for: min(.milliseconds(100) * (1 << min(failures, 6)), .seconds(5)))
                if (try? await client.waitUntilConnected()) == nil { return }
                continue
            }
            failures = 0
        }
    }

    private enum Change { case gone, other }

    /// Waits for the watch to fire or a nudge (new session, data written while absent):
    /// ``Change/gone`` when the node was deleted, or when the session of an ephemeral node ended
    /// (a TTL node belongs to no session: it stays, and is looked at again from the new session).
    private func waitForChange(_ watch: NodeWatch) async -> Change {
        let nudged = state.withLock { $0.nudged }
        defer {
            // A nudge is taken once: the next wait needs a new one (a nudge that came meanwhile counts).
            state.withLock { state in if state.nudged === nudged, nudged.value != nil { state.nudged = Latch() } }
        }
        let mode = self.mode
        return await withTaskGroup(of: Change.self) { group in
            group.addTask {
                do {
                    let event = try await watch.triggered()
                    return event.kind == .nodeDeleted ? .gone : .other
                } catch let error as ZooKeeperError where error.isRetryable {
                    return .other
                } catch {
                    // The session expired or the client closed: an ephemeral node went with it.
                    return mode == .ephemeral ? .gone : .other
                }
            }
            group.addTask {
                _ = await nudged.wait()
                return .other
            }
            defer { group.cancelAll() }
            return await group.next() ?? .other
        }
    }

    /// Creates the node unless this session has it; waits out a node of another session.
    private func ensureCreated() async throws {
        let data = state.withLock { $0.data }
        let createMode: CreateMode
        switch mode {
        case .ephemeral: createMode = .ephemeral
        case .ttl(let ttl): createMode = .persistentWithTTL(ttl)
        }
        do {
            let created = try await client.create(path, data: data, mode: createMode, parents: .container)
            setInPlace(owner: created.stat.ephemeralOwner, created: true)
        } catch let error as ZooKeeperError where error.code == .nodeExists {
            guard let stat = try await client.exists(path) else { return try await ensureCreated() }
            let ours = stat.ephemeralOwner == 0 ? mode != .ephemeral : stat.ephemeralOwner == client.state.session?.sessionID
            if ours {
                if try await client.getData(path).bytes != data { try await client.setData(path, data: data) }
                setInPlace(owner: stat.ephemeralOwner)
                return
            }
            // Another session's (our previous one, not cleaned up yet, or someone else's): wait for it to go.
            setInPlace(false)
            let (still, watch) = try await client.existsAndWatch(path)
            if still != nil { _ = await waitForChange(watch) }
            try await ensureCreated()
        }
    }
}

/// A ``PersistentNode``'s in-place states over time (see ``PersistentNode/states()``).
public struct PersistentNodeStates: AsyncSequence, Sendable {
    public typealias Element = Bool
    public typealias Failure = any Error
    let base: AsyncThrowingStream<Bool, any Error>

    /// Iterates the states of one subscription.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<Bool, any Error>.AsyncIterator

        /// Whether the node is in place, at the next change; `nil` after ``PersistentNode/close()``
        /// or when the consuming task is cancelled.
        /// - Throws: the `ZooKeeperError` that ended the keeping (see ``PersistentNode/states()``).
        public mutating func next() async throws -> Bool? { try await base.next() }

        /// The next state, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> Bool? {
            try await base.next(isolation: actor)
        }
    }

    /// Starts iterating the subscription.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator())
    }
}
