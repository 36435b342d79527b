import CZooKeeper
import Synchronization

/// One registration of a one-shot C watch. The C client holds an unretained pointer to it as its
/// watcher context; the ``WatchRegistry`` keeps it alive until the watch fires, fails, or its handle
/// is closed (the C client frees registered watchers on close without calling them, so the registry
/// resolves whatever is left).
final class WatchBox: @unchecked Sendable {
    let path: String
    /// Which of the server's watches on `path` it is (data and existence watches are one kind).
    let kind: WatchKind
    let handleGeneration: Int
    let deliver: @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void
    weak var registry: WatchRegistry?

    init(
        path: String, kind: WatchKind, handleGeneration: Int,
        deliver: @escaping @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void
    ) {
        self.path = path
        self.kind = kind
        self.handleGeneration = handleGeneration
        self.deliver = deliver
    }

    var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    /// Resolves the watch once: removes it from the registry and delivers `result` (unless it
    /// was withdrawn: nobody waits for it then). Only for a watch the C client has let go of (it
    /// fired).
    func resolve(_ result: Result<WatchedEvent, ZooKeeperError>) {
        guard let registry, registry.remove(self) == .removed else { return }
        deliver(result)
    }

    /// Resolves the watch once with the end of its session (expired, or authentication failed),
    /// but keeps it registered: the C client still holds it and calls it again while its handle
    /// closes, so it must stay alive until ``WatchRegistry/failAll(handleGeneration:with:)``.
    func resolveKeepingRegistration(_ error: ZooKeeperError) {
        guard let registry, registry.retire(self) else { return }
        deliver(.failure(error))
    }
}

/// The two kinds of watch the server keeps per path and session.
enum WatchKind: Sendable, Hashable {
    /// Set by a data read or an existence check.
    case data
    /// Set by a children read.
    case children

    var cType: ZooWatcherType { self == .data ? ZWATCHTYPE_DATA : ZWATCHTYPE_CHILD }
}

/// The watch boxes handed to the C client and not yet resolved, and how many there are per
/// path, kind and handle (to know when the last one on a path goes).
///
/// A box stays here as long as the C client may call its watcher, since the C client holds only
/// a plain pointer to it: until the watch fires, its handle is closed, or the C client confirms
/// that it removed a withdrawn watch.
final class WatchRegistry: Sendable {
    private struct Key: Hashable {
        var path: String
        var kind: WatchKind
        var generation: Int
    }
    private struct State {
        var boxes: [ObjectIdentifier: (box: WatchBox, withdrawn: Bool)] = [:]
        /// Watches per path that someone still waits for (withdrawn ones are not counted).
        var counts: [Key: Int] = [:]

        mutating func uncount(_ box: WatchBox) {
            let key = Key(path: box.path, kind: box.kind, generation: box.handleGeneration)
            if let count = counts[key], count > 1 { counts[key] = count - 1 } else { counts.removeValue(forKey: key) }
        }

        mutating func remove(_ box: WatchBox) -> Removal {
            guard let entry = boxes.removeValue(forKey: ObjectIdentifier(box)) else { return .absent }
            if entry.withdrawn { return .withdrawn }
            uncount(box)
            return .removed
        }
    }
    private let state = Mutex(State())

    /// What ``remove(_:)`` found.
    enum Removal {
        /// The box was registered and someone waits for it.
        case removed
        /// The box was registered but withdrawn.
        case withdrawn
        /// The box was not registered (resolved already).
        case absent
    }

    func register(_ box: WatchBox) {
        box.registry = self
        state.withLock { state in
            state.boxes[ObjectIdentifier(box)] = (box, false)
            state.counts[Key(path: box.path, kind: box.kind, generation: box.handleGeneration), default: 0] += 1
        }
    }

    /// Removes `box`.
    @discardableResult
    func remove(_ box: WatchBox) -> Removal {
        state.withLock { $0.remove(box) }
    }

    /// Marks `box` withdrawn, if it is registered and was not already, and calls `withdraw` (under
    /// the registry's lock, so that no registration on the same path can slip in between the
    /// count and the C call) with whether it was the last watch anyone waits for of its kind on
    /// its path. The box stays registered until ``forget(_:)`` (the C client removed it) or until
    /// it fires or its handle closes.
    func withdraw(_ box: WatchBox, _ withdraw: (_ wasLast: Bool) -> Void) {
        state.withLock { state in
            guard let entry = state.boxes[ObjectIdentifier(box)], !entry.withdrawn else { return }
            state.boxes[ObjectIdentifier(box)] = (box, true)
            state.uncount(box)
            let key = Key(path: box.path, kind: box.kind, generation: box.handleGeneration)
            withdraw(state.counts[key] == nil)
        }
    }

    /// Marks `box` as no longer waited for (as a withdrawn one is) while keeping it registered,
    /// because the C client may still call it: until it fires, or until its handle is closed
    /// (``failAll(handleGeneration:with:)``). `false` if it was not registered or already withdrawn.
    @discardableResult
    func retire(_ box: WatchBox) -> Bool {
        state.withLock { state in
            guard let entry = state.boxes[ObjectIdentifier(box)], !entry.withdrawn else { return false }
            state.boxes[ObjectIdentifier(box)] = (box, true)
            state.uncount(box)
            return true
        }
    }

    /// Forgets a withdrawn box the C client no longer refers to.
    func forget(_ box: WatchBox) {
        _ = state.withLock { $0.remove(box) }
    }

    /// Resolves every watch of a closed handle with `error` (call only after `zookeeper_close` returned).
    func failAll(handleGeneration: Int, with error: ZooKeeperError) {
        let failed = state.withLock { state -> [WatchBox] in
            let matching = state.boxes.values.filter { $0.box.handleGeneration == handleGeneration }
            for entry in matching { _ = state.remove(entry.box) }
            return matching.filter { !$0.withdrawn }.map(\.box)
        }
        for box in failed { box.deliver(.failure(error)) }
    }

    /// How many watches the C client holds.
    var count: Int { state.withLock { $0.boxes.count } }

    /// How many watches someone waits for (or, `withdrawnToo`, the C client holds), leaving out
    /// those on `path`.
    func count(excluding path: String, withdrawnToo: Bool = false) -> Int {
        state.withLock { state in state.boxes.values.count { (withdrawnToo || !$0.withdrawn) && $0.box.path != path } }
    }
}

/// The watcher function for one-shot watches (C completion thread).
let nodeWatcher: watcher_fn = { _, type, state, path, context in
    guard let context else { return }
    CompletionThreadExecutor.deliveringCompletion { deliverWatchEvent(type: type, state: state, path: path, context: context) }
}

private func deliverWatchEvent(type: Int32, state: Int32, path: UnsafePointer<CChar>?, context: UnsafeMutableRawPointer) {
    let box = Unmanaged<WatchBox>.fromOpaque(context).takeUnretainedValue()
    if type == ZOO_SESSION_EVENT {
        // Connecting/connected: the watch stays registered (the C client replays it on reconnect).
        if state == ZOO_EXPIRED_SESSION_STATE {
            box.resolveKeepingRegistration(ZooKeeperError(.sessionExpired, path: box.path, message: "the session expired before the watch fired"))
        } else if state == ZOO_AUTH_FAILED_STATE {
            box.resolveKeepingRegistration(ZooKeeperError(.authFailed, path: box.path, message: "authentication failed before the watch fired"))
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

/// The watch a stream has armed last, to withdraw when the stream ends.
final class ArmedWatch: Sendable {
    private let box = Mutex<WatchBox?>(nil)

    /// Arms `watch`; the one armed before it, if any.
    @discardableResult
    func set(_ watch: WatchBox) -> WatchBox? { box.withLock { box in defer { box = watch }; return box } }

    /// The watch, forgotten here.
    func take() -> WatchBox? { box.withLock { box in defer { box = nil }; return box } }
}
