import CZooKeeper
import Synchronization

/// One registration of a one-shot C watch. The C client holds an unretained pointer to it as its
/// watcher context; the ``WatchRegistry`` keeps it alive until the watch fires, fails, or its handle
/// is closed (the C client frees registered watchers on close without calling them, so the registry
/// resolves whatever is left).
final class WatchBox: @unchecked Sendable {
    let path: String
    let handleGeneration: Int
    let deliver: @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void
    weak var registry: WatchRegistry?
    private let counter: CallbackCounter

    init(
        path: String, handleGeneration: Int, counter: CallbackCounter,
        deliver: @escaping @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void
    ) {
        self.path = path
        self.handleGeneration = handleGeneration
        self.deliver = deliver
        self.counter = counter
        counter.value.add(1, ordering: .relaxed)
    }

    deinit {
        counter.value.subtract(1, ordering: .relaxed)
    }

    var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    /// Resolves the watch once: removes it from the registry and delivers `result`.
    func resolve(_ result: Result<WatchedEvent, ZooKeeperError>) {
        guard let registry, registry.remove(self) else { return }
        deliver(result)
    }
}

/// The watch boxes handed to the C client and not yet resolved.
final class WatchRegistry: Sendable {
    private let boxes = Mutex<[ObjectIdentifier: WatchBox]>([:])

    func register(_ box: WatchBox) {
        box.registry = self
        boxes.withLock { $0[ObjectIdentifier(box)] = box }
    }

    /// Removes `box`; `false` if it was already resolved.
    func remove(_ box: WatchBox) -> Bool {
        boxes.withLock { $0.removeValue(forKey: ObjectIdentifier(box)) != nil }
    }

    /// Resolves every watch of a closed handle with `error` (call only after `zookeeper_close` returned).
    func failAll(handleGeneration: Int, with error: ZooKeeperError) {
        let failed = boxes.withLock { boxes -> [WatchBox] in
            let matching = boxes.values.filter { $0.handleGeneration == handleGeneration }
            for box in matching { boxes.removeValue(forKey: ObjectIdentifier(box)) }
            return matching
        }
        for box in failed { box.deliver(.failure(error)) }
    }

    var count: Int { boxes.withLock { $0.count } }
}

/// The watcher function for one-shot watches (C completion thread).
let nodeWatcher: watcher_fn = { _, type, state, path, context in
    guard let context else { return }
    let box = Unmanaged<WatchBox>.fromOpaque(context).takeUnretainedValue()
    if type == ZOO_SESSION_EVENT {
        // Connecting/connected: the watch stays registered (the C client replays it on reconnect).
        if state == ZOO_EXPIRED_SESSION_STATE {
            box.resolve(.failure(ZooKeeperError(.sessionExpired, path: box.path, message: "the session expired before the watch fired")))
        } else if state == ZOO_AUTH_FAILED_STATE {
            box.resolve(.failure(ZooKeeperError(.authFailed, path: box.path, message: "authentication failed before the watch fired")))
        }
        return
    }
    guard let kind = WatchedEvent.Kind(cType: type) else { return }
    let eventPath = path.map { String(cString: $0) } ?? box.path
    box.resolve(.success(WatchedEvent(kind: kind, path: eventPath)))
}

/// What triggered a one-shot watch.
public struct WatchedEvent: Sendable, Hashable, CustomStringConvertible {
    /// What happened to the node.
    public enum Kind: Sendable, Hashable {
        /// The node was created (a watch set by `existsAndWatch` on a missing node).
        case nodeCreated
        /// The node was deleted.
        case nodeDeleted
        /// The node's data changed.
        case nodeDataChanged
        /// A child was added or removed.
        case nodeChildrenChanged

        init?(cType: Int32) {
            switch cType {
            case ZOO_CREATED_EVENT: self = .nodeCreated
            case ZOO_DELETED_EVENT: self = .nodeDeleted
            case ZOO_CHANGED_EVENT: self = .nodeDataChanged
            case ZOO_CHILD_EVENT: self = .nodeChildrenChanged
            default: return nil
            }
        }
    }

    /// What happened.
    public var kind: Kind
    /// The node it happened to.
    public var path: String

    /// An event of `kind` on `path`.
    public init(kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    public var description: String { "\(kind) \(path)" }
}
