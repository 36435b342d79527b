import CZooKeeper
import Synchronization

/// The reply to a request submitted with one of the `submit…` methods, to be awaited later.
///
/// The server answers one session's requests in the order they were sent, so submitting several
/// requests before awaiting any costs one round trip instead of several.
///
/// A reply is awaited once: copies of a `PendingReply` share it, and only the first ``value()``
/// call gets it; every other call, concurrent or later, throws `.invalidState` at once.
public struct PendingReply<Value: Sendable>: Sendable {
    let box: RequestBox<Value>

    /// Waits for the reply. Throws what the corresponding `async` method would throw, or
    /// `.invalidState` if this reply is (or was) already awaited.
    public func value() async throws -> Value {
        try claim()
        return try await valueOnceClaimed()
    }

    /// Claims the right to await the reply (the first caller only).
    func claim() throws {
        guard box.claimAwaiter() else {
            throw ZooKeeperError(.invalidState, path: box.path, message: "this reply is already awaited: await each PendingReply once")
        }
    }

    /// Waits for the reply; the caller claimed it.
    func valueOnceClaimed() async throws -> Value {
        let box = self.box
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Value, any Error>) in
                _ = box.install(continuation)
            }
        } onCancel: {
            box.cancel()
        }
    }
}

extension ZooKeeperClient {
    /// Sends a create now; see ``create(_:data:mode:acl:parents:)`` (missing parents are not
    /// created here: the reply fails with `.noNode`).
    public func submitCreate(
        _ path: String, data: [UInt8] = [], mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe
    ) -> PendingReply<CreatedNode> {
        do {
            try ZooKeeperPath.validate(path, isSequential: mode.isSequential)
            try checkDataSize(data.count, path: path)
            try mode.validateTTL(path: path)
        } catch {
            return failedReply(error)
        }
        let flags = mode.cFlags
        let ttl = mode.ttlMilliseconds
        return submit(path: path) { handle, box in
            path.withCString { cPath in
                withCACLVector(acl) { acl in
                    withBytes(data) { bytes, length in
                        ttl >= 0
                            ? zoo_acreate2_ttl(handle, cPath, bytes, length, acl, flags, ttl, createCompletion, box)
                            : zoo_acreate2(handle, cPath, bytes, length, acl, flags, createCompletion, box)
                    }
                }
            }
        }
    }

    /// Sends a children read now; see ``getChildren(_:)``.
    public func submitGetChildren(_ path: String) -> PendingReply<NodeChildren> {
        do { try ZooKeeperPath.validate(path) } catch { return failedReply(error) }
        return submit(path: path) { handle, box in
            path.withCString { cPath in
                zoo_aget_children2(handle, cPath, 0, childrenCompletion, box)
            }
        }
    }

    /// Sends a data read now; see ``getData(_:)``.
    public func submitGetData(_ path: String) -> PendingReply<NodeData> {
        do { try ZooKeeperPath.validate(path) } catch { return failedReply(error) }
        return submit(path: path) { handle, box in
            path.withCString { cPath in
                zoo_aget(handle, cPath, 0, dataCompletion, box)
            }
        }
    }

    /// Sends a delete now; see ``delete(_:version:)``.
    public func submitDelete(_ path: String, version: Int32? = nil) -> PendingReply<Void> {
        do { try ZooKeeperPath.validate(path) } catch { return failedReply(error) }
        let version = version ?? -1
        return submit(path: path) { handle, box in
            path.withCString { cPath in
                zoo_adelete(handle, cPath, version, voidCompletion, box)
            }
        }
    }

    private func failedReply<Value>(_ error: ZooKeeperError) -> PendingReply<Value> {
        let box = RequestBox<Value>(path: error.path, inFlight: nil)
        box.resume(.failure(error))
        return PendingReply(box: box)
    }
}

/// A watch a recipe set with a pipelined read, to withdraw when it no longer wants it (see
/// ``ZooKeeperClient/withdraw(_:)``).
package struct WatchToken: Sendable, Hashable {
    let box: WatchBox

    package static func == (left: WatchToken, right: WatchToken) -> Bool { left.box === right.box }
    package func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(box)) }
}

/// The reply to a pipelined read that also set a watch: awaiting it gives the value and the
/// watch's token, or throws (then no watch was set).
package struct PendingWatchedReply<Value: Sendable>: Sendable {
    let reply: PendingReply<Value>
    let token: WatchToken?
    let client: ZooKeeperClient

    package func value() async throws -> (Value, WatchToken) {
        try reply.claim()
        do {
            let value = try await reply.valueOnceClaimed()
            guard let token else { throw ZooKeeperError(.invalidState, message: "no watch was registered") }
            return (value, token)
        } catch let error as ZooKeeperError {
            if let token { client.watches.remove(token.box) }  // the C client registers no watch for a failed read
            throw error
        } catch {
            // Cancelled while the read is under way: it may still succeed and register the watch,
            // which the C client may then call, so the box stays (no longer waited for) until the
            // watch fires or its handle closes.
            if let token { client.watches.retire(token.box) }
            throw error
        }
    }
}

extension ZooKeeperClient {
    /// Sends a data read that sets a watch now; `deliver` gets the watch's outcome. For recipes
    /// that keep many watches (a subtree cache): a read per node, pipelined.
    package func submitGetDataAndWatch(
        _ path: String, deliver: @escaping @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void
    ) -> PendingWatchedReply<NodeData> {
        submitWatching(path: path, kind: .data, deliver: deliver) { handle, cPath, watcher, box in
            zoo_awget(handle, cPath, nodeWatcher, watcher, dataCompletion, box)
        }
    }

    /// Sends a children read that sets a watch now; see ``submitGetDataAndWatch(_:deliver:)``.
    package func submitGetChildrenAndWatch(
        _ path: String, deliver: @escaping @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void
    ) -> PendingWatchedReply<NodeChildren> {
        submitWatching(path: path, kind: .children, deliver: deliver) { handle, cPath, watcher, box in
            zoo_awget_children2(handle, cPath, nodeWatcher, watcher, childrenCompletion, box)
        }
    }

    /// Withdraws a watch set with a pipelined read that nobody waits for any more (from the
    /// server too when it was the client's last on its path and kind).
    package func withdraw(_ token: WatchToken) {
        withdrawWatch(token.box)
    }

    private func submitWatching<Value: Sendable>(
        path: String, kind: WatchKind, deliver: @escaping @Sendable (Result<WatchedEvent, ZooKeeperError>) -> Void,
        _ call: (OpaquePointer, UnsafePointer<CChar>, UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    ) -> PendingWatchedReply<Value> {
        do { try ZooKeeperPath.validate(path) } catch { return PendingWatchedReply(reply: failedReply(error), token: nil, client: self) }
        let registered = Mutex<WatchBox?>(nil)
        let reply: PendingReply<Value> = submitWithGeneration(path: path) { handle, generation, data in
            let box = WatchBox(path: path, kind: kind, handleGeneration: generation, deliver: deliver)
            watches.register(box)
            registered.withLock { $0 = box }
            // An error reply means no watch was set: forget the box, even if the reply is never awaited.
            Unmanaged<RequestBox<Value>>.fromOpaque(data).takeUnretainedValue().onFailure = { [watches] in _ = watches.remove(box) }
            return path.withCString { call(handle, $0, box.context, data) }
        }
        return PendingWatchedReply(reply: reply, token: registered.withLock { $0 }.map(WatchToken.init), client: self)
    }
}
