import CZooKeeper
import Synchronization

/// The requests handed to the C client whose completion has not run yet, and why each handle
/// generation is being closed.
///
/// The C client does not promise to call every completion when a handle is closed (its
/// completion thread can stop before it has processed the `ZCLOSING` replies that
/// `zookeeper_close` queues), so after `zookeeper_close` returns, whatever is still registered
/// for that handle is resumed here and its C reference released.
///
/// The completions that do run while a handle closes carry the C client's `ZCLOSING` (or
/// `ZCONNECTIONLOSS`, `ZINVALIDSTATE`…), whatever the reason for the close. Those codes say only
/// that the request was cut off, so ``translate(_:generation:)`` replaces them with the reason the
/// handle was closed for: `.sessionExpired` after an expiry, `.closed` only after ``ZooKeeperClient/close()``.
final class InFlightRequests: Sendable {
    private typealias Entry = (request: any AbandonableRequest, generation: Int)
    /// The requests, spread over a few locks by address: the tasks that submit and the completion
    /// thread that takes them back would otherwise contend for one lock on every request.
    private let shards: [Shard] = (0..<16).map { _ in Shard() }
    private final class Shard: Sendable {
        let entries = Mutex<[ObjectIdentifier: Entry]>([:])
    }
    /// Handles being closed (from the moment the close is decided until `zookeeper_close` returned).
    private let closeReasons = Mutex<[Int: ZooKeeperError]>([:])
    /// Whether any handle is being closed (so that translating an error needs no lock otherwise).
    private let closing = Atomic<Int>(0)

    /// C codes that only say the request was cut off (no server answered it).
    private static let cutOffCodes: Set<Int32> = [
        ZCLOSING.rawValue, ZCONNECTIONLOSS.rawValue, ZSESSIONEXPIRED.rawValue,
        ZINVALIDSTATE.rawValue, ZOPERATIONTIMEOUT.rawValue, ZRUNTIMEINCONSISTENCY.rawValue,
    ]

    @inline(__always)
    private func shard(_ request: AnyObject) -> Shard {
        shards[Int(truncatingIfNeeded: UInt(bitPattern: ObjectIdentifier(request).hashValue) >> 5) & 15]
    }

    func insert(_ request: any AbandonableRequest, generation: Int) {
        request.submitted(onGeneration: generation)
        shard(request).entries.withLock { $0[ObjectIdentifier(request)] = (request, generation) }
    }

    @discardableResult
    func remove(_ request: AnyObject) -> Bool {
        shard(request).entries.withLock { $0.removeValue(forKey: ObjectIdentifier(request)) != nil }
    }

    /// Records why the handle of `generation` is being closed; from now on its cut-off requests
    /// fail with `reason`. Call before `zookeeper_close`.
    func handleClosing(generation: Int, reason: ZooKeeperError) {
        closeReasons.withLock { reasons in
            reasons[generation] = reason
            closing.store(reasons.count, ordering: .sequentiallyConsistent)
        }
    }

    /// The error a request of `generation` fails with: `error` itself, unless it is a cut-off code
    /// of a handle being closed, which becomes the reason for the close (keeping path, raw code and
    /// operation index).
    func translate(_ error: ZooKeeperError, generation: Int) -> ZooKeeperError {
        guard let rawCode = error.rawCode, Self.cutOffCodes.contains(rawCode),
            closing.load(ordering: .sequentiallyConsistent) > 0,
            var reason = closeReasons.withLock({ $0[generation] })
        else {
            return error
        }
        reason.path = error.path
        reason.rawCode = rawCode
        reason.failedOperationIndex = error.failedOperationIndex
        return reason
    }

    /// Resumes every request of a closed handle with `error`. Only after `zookeeper_close` returned:
    /// then no completion of that handle can run any more.
    func abandonAll(generation: Int, with error: ZooKeeperError) {
        closeReasons.withLock { reasons in
            reasons.removeValue(forKey: generation)
            closing.store(reasons.count, ordering: .sequentiallyConsistent)
        }
        var abandoned: [any AbandonableRequest] = []
        for shard in shards {
            shard.entries.withLock { entries in
                let matching = entries.filter { $0.value.generation == generation }
                for key in matching.keys { entries.removeValue(forKey: key) }
                abandoned += matching.values.map(\.request)
            }
        }
        for request in abandoned { request.abandon(with: error) }
    }

    var count: Int { shards.reduce(0) { total, shard in total + shard.entries.withLock { $0.count } } }
}

protocol AbandonableRequest: AnyObject, Sendable {
    /// Remembers which handle generation the request was handed to.
    func submitted(onGeneration generation: Int)
    /// Resumes the waiting task with `error` and releases the reference the C client held.
    func abandon(with error: ZooKeeperError)
}

/// The context of one asynchronous C request. It travels through the C `data` pointer retained
/// (`Unmanaged.passRetained`); the completion takes it back and resumes the waiting task exactly
/// once. A cancelled task is resumed at once with `CancellationError`; the completion that still
/// arrives later only releases the box.
final class RequestBox<Value: Sendable>: @unchecked Sendable {
    private enum State {
        case idle
        case waiting(UnsafeContinuation<Value, any Error>)
        /// Completed before anyone waited (a pipelined request): kept until ``install(_:)``.
        case completed(Result<Value, ZooKeeperError>)
        case cancelled
        case finished
    }

    private let state = Mutex<State>(.idle)
    let path: String?
    /// Memory the C client writes into when the reply arrives (multi), kept alive with the box.
    let attachment: AnyObject?
    /// Where the box is registered while the C client holds it (`nil` for fire-and-forget calls).
    let inFlight: InFlightRequests?
    /// The handle generation the request was handed to (0 until it is).
    private let generation = Atomic<Int>(0)
    /// Whether a ``PendingReply`` of this box is awaited (only one may be: a second continuation
    /// would replace the first, which would then never resume).
    private let awaiterClaimed = Atomic<Bool>(false)

    /// Run when the C client answers with an error (a watching request: its watch was not set).
    /// Set before the request is handed to the C client and never after.
    nonisolated(unsafe) var onFailure: (@Sendable () -> Void)?

    init(path: String?, inFlight: InFlightRequests?, attachment: AnyObject? = nil) {
        self.path = path
        self.attachment = attachment
        self.inFlight = inFlight
    }

    /// Claims the right to await the reply; `false` if it was already claimed.
    func claimAwaiter() -> Bool {
        !awaiterClaimed.exchange(true, ordering: .relaxed)
    }

    /// Stores the continuation; returns `false` (and resumes it) if the task was already cancelled.
    func install(_ continuation: UnsafeContinuation<Value, any Error>) -> Bool {
        let early = state.withLock { state -> Result<Value, any Error>? in
            switch state {
            case .cancelled:
                return .failure(CancellationError())
            case .completed(let result):
                state = .finished
                return result.mapError { $0 as any Error }
            case .finished:
                return .failure(ZooKeeperError(.invalidState, path: path, message: "the reply was already taken"))
            case .idle, .waiting:
                state = .waiting(continuation)
                return nil
            }
        }
        if let early { continuation.resume(with: early) }
        return early == nil
    }

    func succeed(_ value: Value) {
        resume(.success(value))
    }

    func fail(rawCode: Int32) {
        onFailure?()
        resume(.failure(ZooKeeperError(rawCode: rawCode, path: path)))
    }

    /// Resumes the waiting task (or keeps the result until it waits). A cut-off error of a handle
    /// being closed becomes the reason for the close (see ``InFlightRequests/translate(_:generation:)``).
    func resume(_ result: Result<Value, ZooKeeperError>) {
        let result = result.mapError { error in
            inFlight?.translate(error, generation: generation.load(ordering: .relaxed)) ?? error
        }
        let continuation = state.withLock { state -> UnsafeContinuation<Value, any Error>? in
            switch state {
            case .waiting(let continuation):
                state = .finished
                return continuation
            case .idle:
                state = .completed(result)
                return nil
            case .completed, .cancelled, .finished:
                return nil
            }
        }
        continuation?.resume(with: result.mapError { $0 as any Error })
    }

    func cancel() {
        let continuation = state.withLock { state -> UnsafeContinuation<Value, any Error>? in
            switch state {
            case .idle:
                state = .cancelled
                return nil
            case .waiting(let continuation):
                state = .cancelled
                return continuation
            case .completed:
                state = .cancelled
                return nil
            case .cancelled, .finished:
                return nil
            }
        }
        continuation?.resume(throwing: CancellationError())
    }
}

extension RequestBox: AbandonableRequest {
    func submitted(onGeneration generation: Int) {
        self.generation.store(generation, ordering: .relaxed)
    }

    func abandon(with error: ZooKeeperError) {
        var error = error
        error.path = path
        resume(.failure(error))
        Unmanaged.passUnretained(self).release()
    }
}

/// Takes back the box the C client held (in a completion).
@inline(__always)
func takeBox<Value>(_ data: UnsafeRawPointer?, as: Value.Type = Value.self) -> RequestBox<Value> {
    let box = Unmanaged<RequestBox<Value>>.fromOpaque(data!).takeRetainedValue()
    box.inFlight?.remove(box)
    return box
}

// MARK: - C completion trampolines. They run on the C client's completion thread: copy, resume, return
// (and run the tasks they resumed that prefer the completion thread, see CompletionThreadExecutor).

let voidCompletion: void_completion_t = { rc, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<Void> = takeBox(data)
        if rc == ZOK.rawValue { box.succeed(()) } else { box.fail(rawCode: rc) }
    }
}

/// `zoo_add_auth`'s completion. The C client calls it from its I/O thread (holding its own
/// locks) or from `zookeeper_close`, never from the completion thread: the task it resumes runs
/// elsewhere, even one that prefers the completion executor.
let authCompletion: void_completion_t = { rc, data in
    let box: RequestBox<Void> = takeBox(data)
    if rc == ZOK.rawValue { box.succeed(()) } else { box.fail(rawCode: rc) }
}

let statCompletion: stat_completion_t = { rc, stat, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<Stat> = takeBox(data)
        if rc == ZOK.rawValue { box.succeed(Stat(stat)) } else { box.fail(rawCode: rc) }
    }
}

/// `exists`: `ZNONODE` is an answer, not an error.
let existsCompletion: stat_completion_t = { rc, stat, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<Stat?> = takeBox(data)
        if rc == ZOK.rawValue {
            box.succeed(Stat(stat))
        } else if rc == ZNONODE.rawValue {
            box.succeed(nil)
        } else {
            box.fail(rawCode: rc)
        }
    }
}

let dataCompletion: data_completion_t = { rc, value, length, stat, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<NodeData> = takeBox(data)
        guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
        var bytes: [UInt8] = []
        if let value, length > 0 {
            bytes = Array(UnsafeRawBufferPointer(start: value, count: Int(length)).bindMemory(to: UInt8.self))
        }
        box.succeed(NodeData(bytes: bytes, stat: Stat(stat)))
    }
}

let childrenCompletion: strings_stat_completion_t = { rc, strings, stat, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<NodeChildren> = takeBox(data)
        guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
        box.succeed(NodeChildren(names: stringArray(strings), stat: Stat(stat)))
    }
}

let createCompletion: string_stat_completion_t = { rc, string, stat, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<CreatedNode> = takeBox(data)
        guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
        box.succeed(CreatedNode(path: string.map { String(cString: $0) } ?? "", stat: Stat(stat)))
    }
}

let aclCompletion: acl_completion_t = { rc, acl, stat, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<([ACL], Stat)> = takeBox(data)
        guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
        box.succeed((ACL.array(from: acl), Stat(stat)))
    }
}

let syncCompletion: string_completion_t = { rc, _, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<Void> = takeBox(data)
        if rc == ZOK.rawValue { box.succeed(()) } else { box.fail(rawCode: rc) }
    }
}

func stringArray(_ vector: UnsafePointer<String_vector>?) -> [String] {
    guard let vector, let data = vector.pointee.data else { return [] }
    var names: [String] = []
    names.reserveCapacity(Int(vector.pointee.count))
    for index in 0..<Int(vector.pointee.count) {
        if let name = data[index] { names.append(String(cString: name)) }
    }
    return names
}
