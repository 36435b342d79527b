import CZooKeeper
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import ServiceLifecycle
import Synchronization

/// A ZooKeeper client: one session at a time over the C client `libzookeeper-mt`, with an `async`
/// API, level-triggered watch streams and automatic recovery from session expiry.
///
/// Nothing starts in `init`. Call ``connect()`` (which waits for the first session) or run the client
/// as a swift-service-lifecycle `Service` (``run()``), and ``close()`` it when done.
///
/// Requests go straight to the C client from the calling task; its replies resume the task. The
/// session's life (connecting, suspended, presumed expired, expired, new session, closed) is a
/// pure state machine driven by the C client's session events and a timer, published on
/// ``sessionEvents``.
///
/// - On connection loss: requests in flight fail with `.connectionLoss` (they may or may not have
///   been applied); watches stay registered and are re-armed by the C client on reconnect.
/// - On session expiry: everything in flight fails with `.sessionExpired`, watches fail with
///   `.sessionExpired`, and (unless ``Configuration/reconnectAfterExpiry`` is off) a new session
///   with the next generation is opened and the credentials are applied again.
/// - On close: every outstanding request and watch is resumed with `.closed`. Only ``close()``
///   (or the end of ``run()``) produces `.closed`: whatever code the C client reports while it
///   tears down an expired session's handle, what was cut off by the expiry fails with
///   `.sessionExpired`.
public final class ZooKeeperClient: Sendable {
    /// The servers (and chroot) the client connects to.
    public let connectString: ConnectString
    /// The servers the client connects to now: the connect string's at first, then the
    /// ensemble's as its configuration changes (see ``Configuration/followsEnsembleChanges``).
    let currentServers: Mutex<[ConnectString.Server]>
    /// What the client was created with.
    public let configuration: Configuration
    let logger: Logger

    /// The current C handle: what requests are submitted to. Held only around a submission.
    private let slot = ReadWriteLocked<HandleSlot>(.notStarted)
    /// The session state machine, the event subscribers and the credentials to re-apply.
    private let session: Mutex<SessionBook>
    /// Subscribers whose streams ended, removed from the book at the next step under the session
    /// lock (see ``unsubscribe(_:)``). A leaf lock: nothing else is taken while it is held.
    private let endedSubscribers = Mutex<[Int]>([])
    let watches = WatchRegistry()
    let inFlight = InFlightRequests()
    /// Serial queue for the blocking C calls (`zookeeper_init`, `zookeeper_close`): never the cooperative pool.
    private let handleQueue = DispatchQueue(label: "zookeeper.handle")
    /// How many times `zookeeper_close` was called on this client's handles (tests: once per handle).
    private let closedHandles = Atomic<Int>(0)
    package var closedHandleCount: Int { closedHandles.load(ordering: .relaxed) }
    /// Called on the handle queue between `zookeeper_init` and putting the handle in the slot
    /// (tests: hold it there, as a slow machine may, while the session watcher sees it connect).
    package let afterHandleInitForTesting = Mutex<(@Sendable (Int) -> Void)?>(nil)

    enum HandleSlot {
        case notStarted
        case opening(generation: Int)
        case open(SendableHandle, generation: Int)
        case unavailable(ZooKeeperError)

        var generation: Int? {
            switch self {
            case .opening(let generation), .open(_, let generation): return generation
            default: return nil
            }
        }
    }

    struct SessionBook {
        var machine: SessionStateMachine
        var subscribers: [Int: AsyncStream<SessionState>.Continuation] = [:]
        var nextSubscriber = 0
        /// Credentials added with ``ZooKeeperClient/addAuth(scheme:credential:)`` or the configuration.
        var authentications: [(scheme: String, credential: [UInt8])] = []
        /// Waiters for the C handle of a generation to be closed.
        var closedGenerations: Set<Int> = []
        var closeWaiters: [Int: [CheckedContinuation<Void, Never>]] = [:]
        var credentials: SessionCredentials?
        /// Subscribers to finish once the lock is released (finishing runs their termination
        /// handler, which takes the lock again).
        var toFinish: [AsyncStream<SessionState>.Continuation] = []
        /// Why the C client could not open a handle the last time it tried (for example host names
        /// that do not resolve), told to whoever times out waiting for a connection.
        var openFailure: String?
        /// The state published last (to say how a transition came about).
        var lastPublished: SessionState = .connecting
    }

    /// Runs `body` under the session lock (after forgetting the subscribers whose streams ended),
    /// then finishes the subscribers it ended, unlocked.
    private func withSession<R>(_ body: (inout SessionBook) -> R) -> R {
        let (result, finished) = session.withLock { book -> (R, [AsyncStream<SessionState>.Continuation]) in
            for id in endedSubscribers.withLock({ ids in defer { ids.removeAll() }; return ids }) { book.subscribers.removeValue(forKey: id) }
            let result = body(&book)
            defer { book.toFinish.removeAll() }
            return (result, book.toFinish)
        }
        for continuation in finished { continuation.finish() }
        return result
    }

    /// Creates a client for `connectString` (`"host:port[,host:port…][/chroot]"`).
    /// - Throws: `.invalidConnectString` naming the problem.
    public init(connectString: String, configuration: Configuration = Configuration()) throws {
        self.connectString = try ConnectString(connectString)
        currentServers = Mutex(self.connectString.servers)
        self.configuration = configuration
        var logger = configuration.logger
        logger[metadataKey: "zk.connect"] = "\(self.connectString)"
        self.logger = logger
        var book = SessionBook(machine: SessionStateMachine(reconnectAfterExpiry: configuration.reconnectAfterExpiry))
        book.authentications = configuration.digestCredentials.map { ("digest", Array($0.authString.utf8)) }
        self.session = Mutex(book)
    }

    deinit {
        // A client dropped without close(): close its handle in the background, off the pool. The
        // C client keeps plain pointers to the watch boxes and request boxes until
        // `zookeeper_close` returns (its completion thread may be delivering a watch event to
        // them right now), so the registries that own them live until then, and what is left in
        // them is resolved afterwards, as close() does.
        if case .open(let handle, let generation) = slot.read({ $0 }) {
            let (watches, inFlight) = (watches, inFlight)
            DispatchQueue.global().async {
                let context = zoo_get_context(handle.pointer)
                zookeeper_close(handle.pointer)
                if let context { Unmanaged<HandleContext>.fromOpaque(context).release() }
                let error = ZooKeeperError.closed()
                inFlight.abandonAll(generation: generation, with: error)
                watches.failAll(handleGeneration: generation, with: error)
            }
        }
    }

    // MARK: - Lifecycle

    /// Starts the session and waits until it is connected.
    /// - Throws: `.connectionTimeout` when no server answered within
    ///   ``Configuration/connectionTimeout`` (the client is closed then), `.closed`, `.authFailed`,
    ///   or `CancellationError`.
    @discardableResult
    public func connect() async throws -> SessionInfo {
        start()
        do {
            return try await waitUntilConnected(timeout: configuration.connectionTimeout)
        } catch let error as ZooKeeperError where error.code == .connectionTimeout {
            await close()
            throw error
        }
    }

    /// Starts the session without waiting (idempotent). Watch ``sessionEvents`` for its progress.
    public func start() {
        let actions = withSession { book -> [SessionStateMachine.Action] in
            let actions = book.machine.start()
            execute(actions, in: &book)
            return actions
        }
        if !actions.isEmpty {
            logger.debug("zookeeper client starting")
            if configuration.followsEnsembleChanges { followEnsemble() }
        }
    }

    /// Closes the session: deletes its ephemeral nodes on the server, resumes every outstanding
    /// request and watch with `.closed`, and closes the C handle exactly once, off the cooperative
    /// pool. Waits until the handle is closed. Idempotent.
    public func close() async {
        let generation = withSession { book -> Int? in
            let actions = book.machine.close()
            execute(actions, in: &book)
            for case .closeHandle(let generation, _) in actions { return generation }
            // Closed earlier (or concurrently): wait for that handle too.
            return book.machine.generation > 0 ? book.machine.generation : nil
        }
        slot.write { slot in
            if case .notStarted = slot { slot = .unavailable(.closed()) }
        }
        if let generation { await waitForHandleClosed(generation: generation) }
    }

    /// Waits until the first session is connected. A client not started yet is waited for too
    /// (another task may be about to start it, as a service group does).
    /// - Throws: `.connectionTimeout` after `timeout`, `.closed` or `.authFailed` when the client
    ///   can no longer connect, `CancellationError`.
    @discardableResult
    public func waitUntilConnected(timeout: Duration? = nil) async throws -> SessionInfo {
        let events = sessionEvents
        return try await withThrowingTaskGroup(of: SessionInfo.self) { group in
            group.addTask {
                for await state in events {
                    switch state {
                    case .connected(let info), .readOnly(let info): return info
                    case .closed: throw ZooKeeperError.closed()
                    case .authFailed: throw ZooKeeperError(.authFailed, message: "authentication failed")
                    case .expired(let info) where !self.configuration.reconnectAfterExpiry:
                        throw ZooKeeperError(.sessionExpired, message: "\(info) expired")
                    default: continue
                    }
                }
                throw CancellationError()
            }
            if let timeout {
                group.addTask {
                    try await Task.sleep(for: timeout)
                    var message = "no ZooKeeper server at \(self.connectString) answered within \(timeout)"
                    if let failure = self.session.withLock({ $0.openFailure }) { message += ": \(failure)" }
                    throw ZooKeeperError(.connectionTimeout, message: message)
                }
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    // MARK: - Session state

    /// The states of the session, starting with the current one, ending after ``SessionState/closed``.
    /// Each iteration is an independent subscriber with an unbounded buffer.
    public var sessionEvents: SessionEvents { SessionEvents(client: self) }

    /// A task executor that runs a task on the C client's completion thread when a reply resumes
    /// it, instead of on the cooperative pool: one thread hop (a wake-up of a pool thread) less per
    /// request, which is most of a request's cost on a fast network.
    ///
    /// ```swift
    /// try await withTaskExecutorPreference(ZooKeeperClient.completionExecutor) {
    ///     for path in paths { _ = try await client.getData(path) }
    /// }
    /// ```
    ///
    /// Use it for code that mostly waits for ZooKeeper: between two requests the task runs on the
    /// thread that delivers every reply of its client, so while it computes, other replies wait
    /// (and blocking there stops the client). Everything else (cancellation, errors, watches)
    /// behaves as without it.
    public static var completionExecutor: any TaskExecutor { CompletionThreadExecutor.shared }

    /// The current session state.
    public var state: SessionState { session.withLock { $0.machine.publicState } }

    /// The servers the client connects to now: the connect string's, or the ensemble's after
    /// a reconfiguration the client followed (``Configuration/followsEnsembleChanges``).
    public var servers: [ConnectString.Server] { currentServers.withLock { $0 } }

    /// How many session event streams the client is publishing to (for tests).
    var subscriberCount: Int { session.withLock { $0.subscribers.count } }

    /// The id and password of the connected session (`nil` when not connected).
    public var sessionCredentials: SessionCredentials? { session.withLock { $0.credentials } }

    /// The number of one-shot watches registered with the C client and not yet resolved, leaving
    /// out the client's own watch on the ensemble's configuration (for tests).
    package var registeredWatchCount: Int { watches.count(excluding: Self.configurationPath) }
    /// The watches the C client may still call, withdrawn ones included (without the configuration's).
    package var heldWatchCount: Int { watches.count(excluding: Self.configurationPath, withdrawnToo: true) }

    /// The number of this client's request and watch contexts that the C client holds and has
    /// not given back. Zero once the client is closed: tests use it to prove nothing leaks.
    package var outstandingCallbackContexts: Int { inFlight.count + watches.count }

    func subscribe(_ continuation: AsyncStream<SessionState>.Continuation) -> Int {
        withSession { book in
            book.nextSubscriber += 1
            let id = book.nextSubscriber
            continuation.yield(book.machine.publicState)
            if book.machine.publicState.isTerminal {
                book.toFinish.append(continuation)
            } else {
                book.subscribers[id] = continuation
            }
            return id
        }
    }

    /// Forgets a subscriber whose stream ended. It runs in the stream's termination handler, which
    /// the runtime may call while it holds the cancelled task's status lock; a publish resumes that
    /// same task (taking that lock) while it holds the session lock. Taking the session lock here
    /// could therefore deadlock (it did: a `close()` racing the cancellation of a `waitUntilConnected`),
    /// so the id is only noted under a leaf lock and removed at the next step of the session.
    func unsubscribe(_ id: Int) {
        endedSubscribers.withLock { $0.append(id) }
    }

    // MARK: - Carrying out the state machine's actions (under the session lock; nothing blocks)

    private func execute(_ actions: [SessionStateMachine.Action], in book: inout SessionBook) {
        for action in actions {
            switch action {
            case .publish(let state):
                logTransition(to: state, from: book.lastPublished)
                book.lastPublished = state
                ZooKeeperMetrics.sessionStateChanged(to: state)
                switch state {
                case .expired, .closed, .authFailed, .connecting: book.credentials = nil
                default: break
                }
                for continuation in book.subscribers.values { continuation.yield(state) }
                if state.isTerminal {
                    book.toFinish += book.subscribers.values
                    book.subscribers.removeAll()
                }
            case .openHandle(let generation):
                slot.write { $0 = .opening(generation: generation) }
                handleQueue.async { [self] in openHandle(generation: generation) }
            case .retryOpen(let generation, let delay):
                handleQueue.asyncAfter(deadline: .now() + delay.timeInterval) { [weak self] in
                    self?.openHandle(generation: generation)
                }
            case .closeHandle(let generation, let reason):
                let error: ZooKeeperError
                switch reason {
                case .closed: error = .closed()
                case .sessionExpired: error = ZooKeeperError(.sessionExpired, message: "the session expired")
                case .authFailed: error = ZooKeeperError(.authFailed, message: "authentication failed")
                }
                // Before anything can complete with ZCLOSING: those completions fail with `error`.
                inFlight.handleClosing(generation: generation, reason: error)
                let handle = slot.write { slot -> SendableHandle? in
                    guard slot.generation == generation else { return nil }
                    defer { slot = .unavailable(error) }
                    if case .open(let handle, _) = slot { return handle }
                    return nil
                }
                handleQueue.async { [self] in closeHandle(handle?.pointer, generation: generation, failing: error) }
            case .schedulePresumedExpiry(let delay, let token):
                DispatchQueue.global().asyncAfter(deadline: .now() + delay.timeInterval) { [weak self] in
                    self?.presumedExpiryTimerFired(token: token)
                }
            }
        }
    }

    /// Says what a session state means for the application, once per transition: a lost
    /// connection that comes back is `info`, a session presumed or known expired is a `warning`
    /// (the client opens a new one by itself), failed authentication an `error`. The C
    /// library's own lines about the same episode are `debug` (``CLibraryLog``).
    private func logTransition(to state: SessionState, from previous: SessionState) {
        var metadata: Logger.Metadata = ["zk.state": "\(state)"]
        if let session = state.session { metadata["zk.session"] = "0x\(String(UInt64(bitPattern: session.sessionID), radix: 16))" }
        switch state {
        case .connected:
            if case .suspended = previous {
                logger.info("reconnected to ZooKeeper", metadata: metadata)
            } else if case .presumedExpired = previous {
                logger.info("reconnected to ZooKeeper; the session was not expired after all", metadata: metadata)
            } else {
                logger.debug("connected to ZooKeeper", metadata: metadata)
            }
        case .suspended:
            logger.info("lost the connection to ZooKeeper; reconnecting (the session lives on meanwhile)", metadata: metadata)
        case .presumedExpired:
            logger.warning("ZooKeeper unreachable for long enough that the session may have expired", metadata: metadata)
        case .expired:
            logger.warning("the ZooKeeper session expired; its ephemeral nodes and watches are gone", metadata: metadata)
        case .newSession:
            logger.info("opened a new ZooKeeper session", metadata: metadata)
        case .readOnly:
            logger.warning("connected to a ZooKeeper server that has lost its quorum: reads only", metadata: metadata)
        case .authFailed:
            logger.error("ZooKeeper refused the session's credentials", metadata: metadata)
        case .connecting, .closed:
            logger.debug("zookeeper session state", metadata: metadata)
        }
    }

    private func presumedExpiryTimerFired(token: Int) {
        withSession { book in
            execute(book.machine.presumedExpiryTimerFired(token: token), in: &book)
        }
    }

    /// Called by the C session watcher (completion thread): lock, step the machine, act, unlock.
    fileprivate func handleEvent(_ event: SessionStateMachine.HandleEvent, handle: OpaquePointer?, context: HandleContext) {
        let generation = context.generation
        if case .connected = event, let handle { adopt(handle, context: context) }
        if case .connectedReadOnly = event, let handle { adopt(handle, context: context) }
        withSession { book in
            if case .connected = event, let handle, generation == book.machine.generation {
                book.credentials = Self.credentials(of: handle)
            }
            execute(book.machine.handleEvent(event, generation: generation), in: &book)
        }
    }

    /// Puts a handle that connected before ``openHandle(generation:)`` finished in the slot.
    private func adopt(_ handle: OpaquePointer, context: HandleContext) {
        slot.write { slot in
            if case .opening(context.generation) = slot {
                slot = .open(SendableHandle(pointer: handle), generation: context.generation)
                context.published = true
            }
        }
    }

    private static func credentials(of handle: OpaquePointer) -> SessionCredentials? {
        guard let id = zoo_client_id(handle) else { return nil }
        let password = withUnsafeBytes(of: id.pointee.passwd) { Array($0) }
        return SessionCredentials(sessionID: id.pointee.client_id, password: password)
    }

    // MARK: - Blocking C calls, on handleQueue only

    private func openHandle(generation: Int) {
        let stillWanted = slot.read { $0.generation == generation }
        guard stillWanted else { return }
        CLibraryLog.install(logger: logger, level: configuration.cLibraryLogLevel)
        let context = HandleContext(client: self, generation: generation)
        let contextPointer = Unmanaged.passRetained(context).toOpaque()
        var flags: Int32 = 0x2  // ZOO_NO_LOG_CLIENTENV
        if configuration.allowReadOnly { flags |= 0x1 }  // ZOO_READONLY
        let timeoutMilliseconds = Int32(clamping: configuration.sessionTimeout.milliseconds)
        var clientID = clientid_t()
        var resume = false
        let servers = currentServers.withLock { $0 }
        if let resumeSession = configuration.resumeSession, generation == 1 {
            resume = true
            clientID.client_id = resumeSession.sessionID
            withUnsafeMutableBytes(of: &clientID.passwd) { buffer in
                for (index, byte) in resumeSession.password.prefix(16).enumerated() { buffer[index] = byte }
            }
        }
        let handle: OpaquePointer? = withUnsafePointer(to: &clientID) { clientIDPointer in
            zookeeper_init2(
                ConnectString(servers: servers, chroot: connectString.chroot).description, sessionWatcher, timeoutMilliseconds,
                resume ? clientIDPointer : nil, contextPointer, flags,
                CLibraryLog.callback)
        }
        guard let handle else {
            let code = errno
            Unmanaged<HandleContext>.fromOpaque(contextPointer).release()
            let failure = Self.openFailure(ConnectString(servers: servers), errno: code)
            let repeated = withSession { book -> Bool in
                defer { book.openFailure = failure }
                execute(book.machine.handleOpenFailed(generation: generation), in: &book)
                return book.openFailure == failure
            }
            // Said once per cause; the client keeps trying every second.
            logger.log(level: repeated ? .debug : .warning, "cannot open a ZooKeeper handle; retrying", metadata: ["zk.problem": "\(failure)"])
            return
        }
        withSession { $0.openFailure = nil }
        let resolutionDelay = configuration.hostResolutionInterval.map { Int32(clamping: max($0.milliseconds, 1)) } ?? -1
        zoo_set_servers_resolution_delay(handle, resolutionDelay)
        if let pause = afterHandleInitForTesting.withLock({ $0 }) { pause(generation) }
        enum Adoption { case adopted, closeHere, closedByCloseAction }
        let adoption = slot.write { slot -> Adoption in
            switch slot {
            case .opening(generation):
                slot = .open(SendableHandle(pointer: handle), generation: generation)
                context.published = true
                return .adopted
            case .open(let current, generation) where current.pointer == handle:
                return .adopted
            default:
                // Closed (or superseded) while zookeeper_init ran. If the session watcher had
                // already put the handle in the slot, the close action took it from there and
                // its closeHandle, queued behind this, closes it: closing it here too would
                // close a freed handle and release its context twice.
                return context.published ? .closedByCloseAction : .closeHere
            }
        }
        switch adoption {
        case .adopted:
            break
        case .closedByCloseAction:
            return
        case .closeHere:
            _ = closeC(handle)
            Unmanaged<HandleContext>.fromOpaque(contextPointer).release()
            return
        }
        // The credentials as they are now that the handle is in the slot (those the session
        // watcher has not given already at the connection): one `addAuth` added while the handle
        // was being opened (and told so) is given here.
        giveSessionCredentials(handle: handle, context: context)
    }

    /// Gives `handle` the session's credentials it has not been given yet. The session watcher
    /// does so when the handle connects, before the connection is reported: the opener, which
    /// does so too once the handle is in the slot, may come after the connection has been
    /// reported and used, and a request sent before the credentials is refused (`noAuth`). One
    /// added by ``addAuth(scheme:credential:)`` since may be given twice, which the server takes
    /// as once.
    func giveSessionCredentials(handle: OpaquePointer, context: HandleContext) {
        let credentials = session.withLock { $0.authentications }
        let fresh = context.givenCredentials.withLock { given in
            let fresh = credentials.filter { credential in !given.contains { $0.scheme == credential.scheme && $0.credential == credential.credential } }
            given.append(contentsOf: fresh)
            return fresh
        }
        for credential in fresh {
            submitAuth(handle: handle, generation: context.generation, scheme: credential.scheme, credential: credential.credential, box: nil)
        }
    }

    /// Why `zookeeper_init` failed: the host names that do not resolve (the usual cause), or the
    /// C client's errno.
    static func openFailure(_ connectString: ConnectString, errno code: Int32) -> String {
        var unresolved: [String] = []
        for server in connectString.servers {
            var hints = addrinfo()
            #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #else
            hints.ai_socktype = SOCK_STREAM
            #endif
            var result: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(server.host, String(server.port), &hints, &result)
            if let result { freeaddrinfo(result) }
            if rc != 0 { unresolved.append("\(server.host) (\(String(cString: gai_strerror(rc))))") }
        }
        if !unresolved.isEmpty {
            return "host name\(unresolved.count == 1 ? "" : "s") not resolved: \(unresolved.joined(separator: ", "))"
        }
        return "zookeeper_init failed: \(String(cString: strerror(code)))"
    }

    /// `zookeeper_close`, counted for tests (a handle must be closed exactly once).
    private func closeC(_ handle: OpaquePointer) -> Int32 {
        closedHandles.add(1, ordering: .relaxed)
        return zookeeper_close(handle)
    }

    private func closeHandle(_ handle: OpaquePointer?, generation: Int, failing error: ZooKeeperError) {
        if let handle {
            let context = zoo_get_context(handle)
            let rc = closeC(handle)
            if rc != ZOK.rawValue {
                logger.debug("zookeeper_close returned an error", metadata: ["zk.rc": "\(rc)"])
            }
            if let context { Unmanaged<HandleContext>.fromOpaque(context).release() }
        }
        // The C client may have dropped completions and watchers of this handle: resolve them now.
        inFlight.abandonAll(generation: generation, with: error)
        watches.failAll(handleGeneration: generation, with: error)
        let waiters = session.withLock { book -> [CheckedContinuation<Void, Never>] in
            book.closedGenerations.insert(generation)
            return book.closeWaiters.removeValue(forKey: generation) ?? []
        }
        for waiter in waiters { waiter.resume() }
    }

    private func waitForHandleClosed(generation: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = session.withLock { book -> Bool in
                if book.closedGenerations.contains(generation) { return true }
                book.closeWaiters[generation, default: []].append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: - Submitting requests

    /// Runs `body` with the open handle on the handle queue (where the handle is also closed, so
    /// it stays valid), for C calls that may block, such as `zoo_set_servers` (which resolves
    /// host names). Does nothing when no handle is open.
    func withOpenHandleOnHandleQueue(_ body: @escaping @Sendable (OpaquePointer) -> Void) {
        handleQueue.async { [self] in
            let handle: SendableHandle? = slot.read { current in
                if case .open(let handle, _) = current { return handle }
                return nil
            }
            if let handle { body(handle.pointer) }
        }
    }

    /// Hands `box` to the C client: `call` runs under the slot lock with the open handle, its
    /// generation and the retained box pointer. A non-`ZOK` return means no completion will come,
    /// so the box is taken back and failed at once.
    @inline(__always)
    private func hand<Value: Sendable>(
        _ box: RequestBox<Value>, path: String?,
        _ call: (OpaquePointer, Int, UnsafeMutableRawPointer) -> Int32
    ) {
        let data = Unmanaged.passRetained(box).toOpaque()
        let failure: ZooKeeperError? = slot.read { slot in
            guard case .open(let handle, let generation) = slot else { return slot.unavailableError(path: path) }
            inFlight.insert(box, generation: generation)
            let rc = call(handle.pointer, generation, data)
            if rc == ZOK.rawValue { return nil }
            inFlight.remove(box)
            return Self.submissionError(rc, handle: handle.pointer, path: path)
        }
        if let failure {
            Unmanaged<RequestBox<Value>>.fromOpaque(data).release()
            box.resume(.failure(failure))
        }
    }

    /// Submits one asynchronous C call and waits for its completion (cancellable: a cancelled task
    /// is resumed at once, the late completion only releases the box); in a span named after
    /// `operation` when a tracer is active.
    @inline(__always)
    func perform<Value: Sendable>(
        _ operation: StaticString,
        path: String?,
        attachment: AnyObject? = nil,
        _ call: (OpaquePointer, UnsafeMutableRawPointer) -> Int32
    ) async throws -> Value {
        if Self.isTracing {
            return try await traced(operation, path: path) { try await submitAndWait(path: path, attachment: attachment, call) }
        }
        return try await submitAndWait(path: path, attachment: attachment, call)
    }

    @inline(__always)
    private func submitAndWait<Value: Sendable>(
        path: String?,
        attachment: AnyObject?,
        _ call: (OpaquePointer, UnsafeMutableRawPointer) -> Int32
    ) async throws -> Value {
        let box = RequestBox<Value>(path: path, inFlight: inFlight, attachment: attachment)
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Value, any Error>) in
                guard box.install(continuation) else { return }
                hand(box, path: path) { handle, _, data in call(handle, data) }
            }
        } onCancel: {
            box.cancel()
        }
    }

    /// ``submit(path:_:)`` for calls that register something with the handle's generation (a watch).
    func submitWithGeneration<Value: Sendable>(
        path: String?,
        _ call: (OpaquePointer, Int, UnsafeMutableRawPointer) -> Int32
    ) -> PendingReply<Value> {
        let box = RequestBox<Value>(path: path, inFlight: inFlight)
        hand(box, path: path, call)
        return PendingReply(box: box)
    }

    /// Submits one asynchronous C call now and returns its reply to be awaited later, so that
    /// several requests go out back to back (the server answers a session's requests in order).
    func submit<Value: Sendable>(
        path: String?,
        _ call: (OpaquePointer, UnsafeMutableRawPointer) -> Int32
    ) -> PendingReply<Value> {
        let box = RequestBox<Value>(path: path, inFlight: inFlight)
        hand(box, path: path) { handle, _, data in call(handle, data) }
        return PendingReply(box: box)
    }

    /// Like ``perform(path:attachment:_:)``, for calls that also register a one-shot watch of
    /// `kind`: `call` gets the watcher context too. The C client registers the watch only when the
    /// request succeeds.
    ///
    /// With `armed` (the streams), the request is awaited to its end even if the task is
    /// cancelled, and the watch it registered is kept in `armed`, so that the stream can withdraw
    /// it from the server when it ends (``withdrawWatch(_:)``); a cancelled wait could not know
    /// whether the C client registered it.
    func performWatching<Value: Sendable>(
        _ operation: StaticString, path: String, kind: WatchKind, armed: ArmedWatch? = nil,
        deliver: @escaping @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void,
        _ call: (OpaquePointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    ) async throws -> Value {
        if Self.isTracing {
            return try await traced(operation, path: path, watching: true) {
                try await submitWatchingAndWait(path: path, kind: kind, armed: armed, deliver: deliver, call)
            }
        }
        return try await submitWatchingAndWait(path: path, kind: kind, armed: armed, deliver: deliver, call)
    }

    private func submitWatchingAndWait<Value: Sendable>(
        path: String, kind: WatchKind, armed: ArmedWatch?,
        deliver: @escaping @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void,
        _ call: (OpaquePointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    ) async throws -> Value {
        let box = RequestBox<Value>(path: path, inFlight: inFlight)
        let watch = Mutex<WatchBox?>(nil)
        // The watch a stream armed before this one (an `exists` watch replaced by a read's once the
        // node appeared): withdrawn once this request is answered (a fired one needs nothing),
        // rather than left registered until it fires.
        let replaced = Mutex<WatchBox?>(nil)
        defer { if let old = replaced.withLock({ $0.take() }) { withdrawWatch(old) } }
        func submit(_ continuation: UnsafeContinuation<Value, any Error>) {
            guard box.install(continuation) else { return }
            hand(box, path: path) { handle, generation, data in
                let watchBox = WatchBox(path: path, kind: kind, handleGeneration: generation, deliver: deliver)
                watches.register(watchBox)
                watch.withLock { $0 = watchBox }
                if let old = armed?.set(watchBox), old !== watchBox { replaced.withLock { $0 = old } }
                // An error reply means the C client did not set the watch: forget the box, also
                // when the caller was cancelled before the reply (nobody else would).
                box.onFailure = { [watches] in _ = watches.remove(watchBox) }
                return call(handle, watchBox.context, data)
            }
        }
        do {
            if armed != nil {
                return try await withUnsafeThrowingContinuation { submit($0) }
            }
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { submit($0) }
            } onCancel: {
                box.cancel()
            }
        } catch let error as ZooKeeperError {
            // Not registered by the C client (a refused submission, or an error reply, which
            // `onFailure` handled already): forget the box. After a cancelled wait the reply may
            // still succeed: then the box stays until the watch resolves or the handle closes.
            if let watchBox = watch.withLock({ $0 }) { _ = watches.remove(watchBox) }
            throw error
        }
    }

    /// Withdraws a watch nobody waits for any more (a stream ended): if it was the last watch of
    /// its kind on its path that anyone waits for, the server's watch is removed too
    /// (`zoo_aremove_all_watches`); otherwise only this registration (`zoo_aremove_watches` with
    /// its watcher, which the server only checks). The box stays registered until the C client's
    /// reply says it no longer refers to it (a watch event already on its way is delivered before
    /// that reply, to a box that is still alive); if the removal fails (a lost connection), it
    /// stays until the watch fires or its handle closes. A watch that already fired needs
    /// nothing; one of a handle that is no longer the open one is only marked withdrawn: that
    /// handle may still be closing (its C client calling the box), and its close releases it.
    func withdrawWatch(_ box: WatchBox) {
        let removal: PendingReply<Void>? = slot.read { slot in
            guard case .open(let handle, let generation) = slot, generation == box.handleGeneration else {
                watches.retire(box)
                return nil
            }
            var reply: PendingReply<Void>?
            watches.withdraw(box) { wasLast in
                let request = RequestBox<Void>(path: box.path, inFlight: inFlight)
                let data = Unmanaged.passRetained(request).toOpaque()
                inFlight.insert(request, generation: generation)
                // The C header types the completion as a pointer to one; the C client uses the
                // value it is given as the function itself.
                let completion = unsafeBitCast(voidCompletion, to: UnsafeMutablePointer<void_completion_t?>.self)
                let rc = box.path.withCString { path in
                    wasLast
                        ? zoo_aremove_all_watches(handle.pointer, path, box.kind.cType, 0, completion, data)
                        : zoo_aremove_watches(handle.pointer, path, box.kind.cType, nodeWatcher, box.context, 0, completion, data)
                }
                if rc == ZOK.rawValue {
                    reply = PendingReply(box: request)
                } else {
                    inFlight.remove(request)
                    Unmanaged<RequestBox<Void>>.fromOpaque(data).release()
                }
            }
            return reply
        }
        guard let removal else { return }
        let registry = watches
        Task.detached {
            if (try? await removal.value()) != nil { registry.forget(box) }
        }
    }

    static func submissionError(_ rc: Int32, handle: OpaquePointer, path: String?) -> ZooKeeperError {
        if rc == ZINVALIDSTATE.rawValue {
            let state = zoo_state(handle)
            if state == ZOO_EXPIRED_SESSION_STATE {
                return ZooKeeperError(.sessionExpired, path: path, rawCode: rc, message: "the session expired")
            }
            if state == ZOO_AUTH_FAILED_STATE {
                return ZooKeeperError(.authFailed, path: path, rawCode: rc, message: "authentication failed")
            }
        }
        return ZooKeeperError(rawCode: rc, path: path)
    }

    /// Gives the C client a credential for the session of `handle` (which sends it now if
    /// connected, and again on every reconnect). Between two connection attempts the C client
    /// refuses credentials (`ZINVALIDSTATE` while its state is 0): the credential then waits on
    /// the handle's context and is given at its next connection, before the connection is reported.
    func submitAuth(handle: OpaquePointer, generation: Int, scheme: String, credential: [UInt8], box: RequestBox<Void>?) {
        var pending = HandleContext.PendingAuthentication(scheme: scheme, credential: credential, box: box)
        guard !giveAuth(pending, handle: handle, generation: generation),
            let context = zoo_get_context(handle).map({ Unmanaged<HandleContext>.fromOpaque($0).takeUnretainedValue() })
        else { return }
        pending.waited = true
        context.pendingAuthentications.withLock { $0.append(pending) }
        // Connected meanwhile (its event may have been handled before the append): give it now.
        if zoo_state(handle) != 0 { givePendingAuths(handle: handle, context: context) }
    }

    /// Gives the credentials waiting on `context` to `handle` (see ``submitAuth(handle:generation:scheme:credential:box:)``).
    func givePendingAuths(handle: OpaquePointer, context: HandleContext) {
        let pending = context.pendingAuthentications.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        var refused: [HandleContext.PendingAuthentication] = []
        for authentication in pending where !giveAuth(authentication, handle: handle, generation: context.generation) {
            refused.append(authentication)
        }
        if !refused.isEmpty { context.pendingAuthentications.withLock { $0.insert(contentsOf: refused, at: 0) } }
    }

    /// `zoo_add_auth`; `false` when the C client is between connection attempts (try again at the
    /// next connection). Any other refusal fails the caller's request, if there is one.
    ///
    /// A caller's request stays in flight (with the reference the C client is to hold) while its
    /// credential waits, so that closing the handle fails it as it fails any other request.
    private func giveAuth(_ authentication: HandleContext.PendingAuthentication, handle: OpaquePointer, generation: Int) -> Bool {
        let box = authentication.box
        let data = box.map { box in
            if authentication.waited { return Unmanaged.passUnretained(box).toOpaque() }
            inFlight.insert(box, generation: generation)
            return Unmanaged.passRetained(box).toOpaque()
        }
        let rc = authentication.credential.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                zoo_add_auth(handle, authentication.scheme, chars.baseAddress, Int32(chars.count), data == nil ? nil : authCompletion, data)
            }
        }
        guard rc != ZOK.rawValue else { return true }
        // Refused in state 0 (between connection attempts), or for a session that is over. The
        // state is read after the refusal and may have moved on from 0 already: only a session
        // that is over makes the refusal final.
        if rc == ZINVALIDSTATE.rawValue {
            let state = zoo_state(handle)
            if state != ZOO_EXPIRED_SESSION_STATE && state != ZOO_AUTH_FAILED_STATE { return false }
        }
        if let box, inFlight.remove(box), let data { Unmanaged<RequestBox<Void>>.fromOpaque(data).release() }
        box?.resume(.failure(Self.submissionError(rc, handle: handle, path: nil)))
        logger.warning("addAuth could not be submitted", metadata: ["zk.scheme": "\(authentication.scheme)", "zk.rc": "\(rc)"])
        return true
    }

    /// Adds an identity to the session (for example `scheme: "digest", credential: "user:password"`).
    /// It is applied again on every new session after expiry. Given while the client is between
    /// two connection attempts, it goes out at the next connection, before the connection is
    /// reported, and this call returns once the server has taken it. When the call throws
    /// `.connectionLoss` (a session being opened, a lost connection), the credential is kept all
    /// the same: the session being opened and every later one get it.
    /// - Throws: `.authFailed` (the session is then unusable), `.connectionLoss`, `.closed`.
    public func addAuth(scheme: String, credential: [UInt8]) async throws {
        let box = RequestBox<Void>(path: nil, inFlight: inFlight)
        // Kept for every later session first: once given, the C client keeps it for this
        // session's reconnects, even when this call reports a lost connection.
        session.withLock { $0.authentications.append((scheme, credential)) }
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                _ = box.install(continuation)
                let failure: ZooKeeperError? = slot.read { slot in
                    guard case .open(let handle, let generation) = slot else { return slot.unavailableError(path: nil) }
                    submitAuth(handle: handle.pointer, generation: generation, scheme: scheme, credential: credential, box: box)
                    return nil
                }
                if let failure { box.resume(.failure(failure)) }
            }
        } catch let error as ZooKeeperError where error.code == .authFailed {
            // Refused: not given to later sessions either.
            session.withLock { book in
                if let index = book.authentications.lastIndex(where: { $0.scheme == scheme && $0.credential == credential }) {
                    book.authentications.remove(at: index)
                }
            }
            throw error
        }
    }

    /// Adds a `digest` identity (`user:password`); see ``addAuth(scheme:credential:)``.
    public func addAuth(digest credential: DigestCredential) async throws {
        try await addAuth(scheme: "digest", credential: Array(credential.authString.utf8))
    }
}

extension ZooKeeperClient.HandleSlot {
    func unavailableError(path: String?) -> ZooKeeperError {
        switch self {
        case .notStarted:
            return ZooKeeperError(.invalidState, path: path, message: "the client is not started: call connect(), start() or run()")
        case .opening:
            return ZooKeeperError(.connectionLoss, path: path, message: "the session is being opened")
        case .open:
            return ZooKeeperError(.invalidState, path: path)
        case .unavailable(var error):
            error.path = path
            return error
        }
    }
}

extension ZooKeeperClient: Service {
    /// Runs the client as a service: starts the session, keeps it (reopening it after expiry) until
    /// graceful shutdown or cancellation, then closes it.
    public func run() async throws {
        start()
        try? await gracefulShutdown()
        await close()
    }
}

/// A C handle crossing to the handle queue (the C client is thread-safe; the slot decides who may use it).
struct SendableHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// The C session watcher's context: which client and which handle generation the events are for.
final class HandleContext: @unchecked Sendable {
    weak var client: ZooKeeperClient?
    let generation: Int
    /// Whether the handle was ever put in the slot (read and written under the slot's lock only).
    /// From then on, the close action that takes it out of the slot closes it and releases this context.
    var published = false
    /// Credentials the C client refused between two connection attempts, given at the next connection.
    let pendingAuthentications = Mutex<[PendingAuthentication]>([])
    /// The session's credentials given to this handle (by the session watcher or the opener).
    let givenCredentials = Mutex<[(scheme: String, credential: [UInt8])]>([])

    struct PendingAuthentication {
        var scheme: String
        var credential: [UInt8]
        /// The request of an ``ZooKeeperClient/addAuth(scheme:credential:)`` call waiting for it.
        var box: RequestBox<Void>?
        /// Whether it was refused once: its request is in flight already.
        var waited = false
    }

    init(client: ZooKeeperClient, generation: Int) {
        self.client = client
        self.generation = generation
    }
}

/// The global watcher of every handle (C completion thread).
private let sessionWatcher: watcher_fn = { handle, type, state, _, context in
    guard type == ZOO_SESSION_EVENT, let context else { return }
    let handleContext = Unmanaged<HandleContext>.fromOpaque(context).takeUnretainedValue()
    guard let client = handleContext.client else { return }
    let event: SessionStateMachine.HandleEvent
    switch state {
    case ZOO_CONNECTED_STATE, ZOO_READONLY_STATE:
        // The session's credentials, and those that waited for a connection, go out before the
        // connection is reported.
        if let handle {
            client.giveSessionCredentials(handle: handle, context: handleContext)
            client.givePendingAuths(handle: handle, context: handleContext)
        }
        let id = handle.flatMap { zoo_client_id($0)?.pointee.client_id } ?? 0
        let timeout = Duration.milliseconds(handle.map { Int64(zoo_recv_timeout($0)) } ?? 0)
        event = state == ZOO_CONNECTED_STATE
            ? .connected(sessionID: id, negotiatedTimeout: timeout)
            : .connectedReadOnly(sessionID: id, negotiatedTimeout: timeout)
    case ZOO_CONNECTING_STATE: event = .connecting
    case ZOO_ASSOCIATING_STATE: event = .associating
    case ZOO_EXPIRED_SESSION_STATE: event = .expired
    case ZOO_AUTH_FAILED_STATE: event = .authFailed
    default: return
    }
    client.handleEvent(event, handle: handle, context: handleContext)
}

extension Duration {
    /// Whole milliseconds (rounded down), for the C client, server settings and znode times.
    package var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    var timeInterval: DispatchTimeInterval {
        .milliseconds(Int(clamping: milliseconds))
    }
}
