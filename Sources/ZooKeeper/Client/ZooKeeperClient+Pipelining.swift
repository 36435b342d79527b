import CZooKeeper

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
        let box = self.box
        guard box.claimAwaiter() else {
            throw ZooKeeperError(.invalidState, path: box.path, message: "this reply is already awaited: await each PendingReply once")
        }
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
