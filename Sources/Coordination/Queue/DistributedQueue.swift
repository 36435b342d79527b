import Foundation
import Synchronization
import ZooKeeper

/// A queue with at-least-once consumption: an item leaves the queue only when the consumer that
/// took it says it is done, so a consumer that dies between taking and processing loses nothing.
/// kazoo's `LockingQueue` semantics and layout, so Swift and Python processes share one queue:
///
/// - `<path>/entries/entry-<priority, 3 digits>-<sequence>`: the items (persistent sequential),
///   taken in order of priority (lower first), then of arrival;
/// - `<path>/taken/<entry name>`: an ephemeral node per item being processed, holding the
///   consumer's id; when its session ends, the item is offered again.
///
/// ``take(timeout:)`` returns a ``QueueItem``: ``QueueItem/consume()`` removes it (atomically,
/// and only while this consumer still holds it), ``QueueItem/release()`` offers it again. Items
/// are values of a `NodeCodec` (bytes as they are by default); an item that does not decode is
/// handed out like any other, its ``QueueItem/value()`` throws an error naming it, and the consumer
/// decides: ``QueueItem/consume()`` to drop it, or ``QueueItem/release()``.
///
/// ```swift
/// let queue = DistributedQueue(client: client, path: "/queues/emails")
/// try await queue.put(Array("hello".utf8))
/// let item = try await queue.take()
/// print(String(decoding: try item.value(), as: UTF8.self))
/// try await item.consume()
/// ```
public final class DistributedQueue<Codec: NodeCodec>: Sendable {
    /// The client the queue uses.
    public let client: ZooKeeperClient
    /// The queue's node (`entries` and `taken` are its children).
    public let path: String
    /// How items are stored.
    public let codec: Codec
    /// This consumer's id, in the `taken` nodes it creates (32 lowercase hex digits, as kazoo's).
    public let consumerID: String
    /// Entries this consumer is taking (their mark's create under way, in any task) or cleaning
    /// up after a take that did not finish: not tried again meanwhile (a clean-up cannot tell a
    /// new mark of ours from the old one). `handedBack` is set when one is let go (a take that
    /// passed it over looks again then), and replaced.
    private struct InHand {
        var entries: Set<String> = []
        var handedBack = Latch<Void>()
    }
    private let inHand = Mutex(InHand())

    /// Lets go of `name`, waking the takes that passed it over.
    private func handBack(_ name: String) {
        let handedBack = inHand.withLock { state -> Latch<Void> in
            state.entries.remove(name)
            defer { state.handedBack = Latch() }
            return state.handedBack
        }
        handedBack.set(())
    }

    /// The default priority of an item (kazoo's).
    public static var defaultPriority: Int { 100 }

    /// A queue at `path` whose items are `codec`'s values.
    public init(client: ZooKeeperClient, path: String, codec: Codec) {
        self.client = client
        self.path = path
        self.codec = codec
        consumerID = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    var entries: String { ZooKeeperPath.join(path, "entries") }
    var taken: String { ZooKeeperPath.join(path, "taken") }

    /// Adds an item.
    /// - Parameters:
    ///   - value: the item.
    ///   - priority: 0…999, lower first (kazoo's; default 100).
    /// - Throws: `.invalidPath` naming ``path``; ``CoordinationError/Code/invalidArgument`` for a
    ///   priority out of range; `.marshallingError` when the value cannot be encoded (nothing is
    ///   added); what the client throws.
    public func put(_ value: Codec.Value, priority: Int = defaultPriority) async throws {
        try ZooKeeperPath.validate(path)  // before it is joined with `entries` (`""` + `entries` is valid)
        guard (0...999).contains(priority) else {
            throw CoordinationError(.invalidArgument, path: path, message: "priority \(priority) is not in 0...999")
        }
        let bytes: [UInt8]
        do { bytes = try codec.encode(value) } catch {
            throw ZooKeeperError(.marshallingError, path: entries, message: "cannot encode a \(Codec.Value.self) for \(path): \(error)")
        }
        let name = "entry-" + String(format: "%03d", priority) + "-"
        try await client.create(ZooKeeperPath.join(entries, name), data: bytes, mode: .persistentSequential, parents: .persistent)
    }

    /// How many items are in the queue (taken ones included).
    /// - Throws: `.invalidPath` naming ``path``; what the client throws.
    public func count() async throws -> Int {
        try ZooKeeperPath.validate(path)
        return Int(try await client.exists(entries)?.numChildren ?? 0)
    }

    /// Takes the first item nobody is processing, waiting for one; it stays in the queue until
    /// ``QueueItem/consume()``.
    /// - Throws: `.invalidPath` naming ``path``; ``CoordinationError/Code/timedOut`` after
    ///   `timeout`; `CancellationError`; `.closed`.
    public func take(timeout: Duration? = nil) async throws -> QueueItem<Codec> {
        try ZooKeeperPath.validate(path)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        return try await recipeSpan("queue.take", path: path) {
            while true {
                try Task.checkCancellation()
                do {
                    try await client.createPath(entries)
                    try await client.createPath(taken)
                    let (entryNodes, entriesWatch) = try await client.getChildrenAndWatch(entries)
                    let (takenNodes, takenWatch) = try await client.getChildrenAndWatch(taken)
                    let held = Set(takenNodes.names)
                    let handedBack = inHand.withLock { $0.handedBack }  // before any is passed over
                    var passedOver = false
                    for name in entryNodes.names.sorted() where !held.contains(name) {
                        switch try await lock(name) {
                        case .taken(let item): return item
                        case .inHand: passedOver = true
                        case .heldOrGone: continue
                        }
                    }
                    // An item passed over while this consumer had it in hand is looked at again
                    // once it is let go (a clean-up may find no mark to delete, and then no watch
                    // fires).
                    try await waitForAny([entriesWatch, takenWatch], until: deadline, orWhen: passedOver ? handedBack : nil)
                } catch let error as ZooKeeperError where error.isTransient {
                    try await waitForConnection(client, until: deadline, path: path)
                }
            }
        }
    }

    /// How an attempt to take one entry ended.
    enum LockOutcome {
        case taken(QueueItem<Codec>)
        /// Someone holds it, or it was consumed meanwhile.
        case heldOrGone
        /// This consumer has it in hand already (another task taking it, or a clean-up).
        case inHand
    }

    /// Takes `name` if nobody else has.
    ///
    /// When the take does not finish (a lost reply, a lost connection before the item is read,
    /// cancellation), the item may be marked taken by this session with nobody to process it: the
    /// mark is deleted in the background, once the connection is back, if this consumer made it
    /// in this session; meanwhile this consumer does not try the item again.
    func lock(_ name: String) async throws -> LockOutcome {
        guard inHand.withLock({ $0.entries.insert(name).inserted }) else { return .inHand }
        var cleaningUp = false
        defer { if !cleaningUp { handBack(name) } }
        let lockPath = ZooKeeperPath.join(taken, name)
        let session = client.state.session?.sessionID
        do {
            let created: CreatedNode
            do {
                created = try await client.create(lockPath, data: Array(consumerID.utf8), mode: .ephemeral)
            } catch let error as ZooKeeperError where error.code == .nodeExists {
                return .heldOrGone
            }
            do {
                let entry = try await client.getData(ZooKeeperPath.join(entries, name))
                return .taken(QueueItem(queue: self, name: name, bytes: entry.bytes, lockVersion: created.stat.version, session: created.stat.ephemeralOwner))
            } catch let error as ZooKeeperError where error.code == .noNode {
                try await client.deleteIfExists(lockPath)  // consumed meanwhile
                return .heldOrGone
            }
        } catch {
            if let session {
                cleaningUp = true  // in hand until the clean-up is done
                Task.detached { [self] in
                    await Self.release(lockPath, ifMadeBy: consumerID, in: session, client: client)
                    handBack(name)
                }
            }
            throw error
        }
    }

    /// Deletes the taken mark at `lockPath` if `consumer` made it in `session` (another queue
    /// object on the same client has another id), trying again while the connection is down and
    /// the session may still be alive (its mark with it).
    static func release(_ lockPath: String, ifMadeBy consumer: String, in session: Int64, client: ZooKeeperClient) async {
        while client.state.session?.sessionID == session {
            do {
                let mark = try await client.getData(lockPath)
                if mark.stat.ephemeralOwner == session, mark.bytes == Array(consumer.utf8) {
                    _ = try await client.deleteIfExists(lockPath, version: mark.stat.version)
                }
                return
            } catch let error as ZooKeeperError where error.code == .noNode {
                return
            } catch let error as ZooKeeperError where error.isRetryable {
                await client.pauseBeforeCleanupRetry()
            } catch {
                return
            }
        }
    }

    /// Waits for one of `watches` to fire, or `latch` to be set; throws `.timedOut` at `deadline`.
    private func waitForAny(_ watches: [NodeWatch], until deadline: ContinuousClock.Instant?, orWhen latch: Latch<Void>?) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for watch in watches {
                group.addTask {
                    _ = try await watch.triggered()
                    return true
                }
            }
            if let latch {
                group.addTask {
                    _ = await latch.wait()
                    return true
                }
            }
            if let deadline {
                group.addTask {
                    try await Task.sleep(until: deadline)
                    return false
                }
            }
            defer { group.cancelAll() }
            if try await group.next() == false {
                throw CoordinationError(.timedOut, path: path, message: "no item before the deadline")
            }
        }
    }
}

extension DistributedQueue where Codec == RawBytesCodec {
    /// A queue of byte arrays at `path`.
    public convenience init(client: ZooKeeperClient, path: String) {
        self.init(client: client, path: path, codec: RawBytesCodec())
    }
}

/// Bytes as they are: the default codec of a ``DistributedQueue``.
public struct RawBytesCodec: NodeCodec {
    /// The codec.
    public init() {}
    /// The bytes.
    public func encode(_ value: [UInt8]) throws -> [UInt8] { value }
    /// The bytes.
    public func decode(_ bytes: [UInt8]) throws -> [UInt8] { bytes }
}

/// An item taken from a ``DistributedQueue``: held by this consumer until it is consumed or
/// released (or its session ends, which offers it again).
public struct QueueItem<Codec: NodeCodec>: Sendable {
    let queue: DistributedQueue<Codec>
    /// The item's node name under `entries` (`entry-<priority>-<sequence>`).
    public let name: String
    /// The item's bytes.
    public let bytes: [UInt8]
    let lockVersion: Int32
    let session: Int64

    /// The item's value.
    /// - Throws: `.marshallingError` naming the item's node when its bytes do not decode.
    public func value() throws -> Codec.Value {
        do {
            return try queue.codec.decode(bytes)
        } catch {
            throw ZooKeeperError(
                .marshallingError, path: ZooKeeperPath.join(queue.entries, name),
                message: "queue item \(name) does not hold a \(Codec.Value.self) (\(bytes.count) bytes): \(error)")
        }
    }

    /// Removes the item from the queue, in one transaction with our hold on it, and only if we
    /// still hold it (our session did not end, nobody took it over).
    /// - Throws: ``CoordinationError/Code/lost`` when we no longer hold it (nothing is removed;
    ///   it is another consumer's now); what the client throws.
    public func consume() async throws {
        try await checkHeld()
        do {
            try await queue.client.multi([
                .delete(path: ZooKeeperPath.join(queue.taken, name), version: lockVersion),
                .delete(path: ZooKeeperPath.join(queue.entries, name)),
            ])
        } catch let error as ZooKeeperError where error.failedOperationIndex == 0 {
            throw lost()
        }
    }

    /// Gives the item back to the queue (another consumer may take it).
    public func release() async throws {
        try await checkHeld()
        try await queue.client.deleteIfExists(ZooKeeperPath.join(queue.taken, name), version: lockVersion)
    }

    /// Whether we still hold the item: our `taken` node exists and belongs to our session.
    private func checkHeld() async throws {
        try await queue.client.sync(queue.taken)
        guard let stat = try await queue.client.exists(ZooKeeperPath.join(queue.taken, name)), stat.ephemeralOwner == session else {
            throw lost()
        }
    }

    private func lost() -> CoordinationError {
        CoordinationError(.lost, path: ZooKeeperPath.join(queue.entries, name), message: "this consumer no longer holds the item (its session ended)")
    }
}
