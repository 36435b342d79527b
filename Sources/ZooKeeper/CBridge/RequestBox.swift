import CZooKeeper
import Synchronization

/// Counts one client's request and watch contexts that the C client has not given back yet
/// (tests use it to prove nothing leaks).
final class CallbackCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// The requests handed to the C client whose completion has not run yet.
///
/// The C client does not promise to call every completion when a handle is closed (its
/// completion thread can stop before it has processed the `ZCLOSING` replies that
/// `zookeeper_close` queues), so after `zookeeper_close` returns, whatever is still registered
/// for that handle is resumed here and its C reference released.
final class InFlightRequests: Sendable {
    private let entries = Mutex<[ObjectIdentifier: (request: any AbandonableRequest, generation: Int)]>([:])

    func insert(_ request: any AbandonableRequest, generation: Int) {
        entries.withLock { $0[ObjectIdentifier(request)] = (request, generation) }
    }

    @discardableResult
    func remove(_ request: AnyObject) -> Bool {
        entries.withLock { $0.removeValue(forKey: ObjectIdentifier(request)) != nil }
    }

    /// Resumes every request of a closed handle with `error`. Only after `zookeeper_close` returned:
    /// then no completion of that handle can run any more.
    func abandonAll(generation: Int, with error: ZooKeeperError) {
        let abandoned = entries.withLock { entries -> [any AbandonableRequest] in
            let matching = entries.filter { $0.value.generation == generation }
            for key in matching.keys { entries.removeValue(forKey: key) }
            return matching.values.map(\.request)
        }
        for request in abandoned { request.abandon(with: error) }
    }

    var count: Int { entries.withLock { $0.count } }
}

protocol AbandonableRequest: AnyObject, Sendable {
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
    private let counter: CallbackCounter
    /// Where the box is registered while the C client holds it (`nil` for fire-and-forget calls).
    let inFlight: InFlightRequests?

    init(path: String?, counter: CallbackCounter, inFlight: InFlightRequests?, attachment: AnyObject? = nil) {
        self.path = path
        self.attachment = attachment
        self.counter = counter
        self.inFlight = inFlight
        counter.value.add(1, ordering: .relaxed)
    }

    deinit {
        counter.value.subtract(1, ordering: .relaxed)
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
        resume(.failure(ZooKeeperError(rawCode: rawCode, path: path)))
    }

    func resume(_ result: Result<Value, ZooKeeperError>) {
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

// MARK: - C completion trampolines. They run on the C client's completion thread: copy, resume, return.

let voidCompletion: void_completion_t = { rc, data in
    let box: RequestBox<Void> = takeBox(data)
    if rc == ZOK.rawValue { box.succeed(()) } else { box.fail(rawCode: rc) }
}

let statCompletion: stat_completion_t = { rc, stat, data in
    let box: RequestBox<Stat> = takeBox(data)
    if rc == ZOK.rawValue { box.succeed(Stat(stat)) } else { box.fail(rawCode: rc) }
}

/// `exists`: `ZNONODE` is an answer, not an error.
let existsCompletion: stat_completion_t = { rc, stat, data in
    let box: RequestBox<Stat?> = takeBox(data)
    if rc == ZOK.rawValue {
        box.succeed(Stat(stat))
    } else if rc == ZNONODE.rawValue {
        box.succeed(nil)
    } else {
        box.fail(rawCode: rc)
    }
}

let dataCompletion: data_completion_t = { rc, value, length, stat, data in
    let box: RequestBox<NodeData> = takeBox(data)
    guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
    var bytes: [UInt8] = []
    if let value, length > 0 {
        bytes = Array(UnsafeRawBufferPointer(start: value, count: Int(length)).bindMemory(to: UInt8.self))
    }
    box.succeed(NodeData(bytes: bytes, stat: Stat(stat)))
}

let childrenCompletion: strings_stat_completion_t = { rc, strings, stat, data in
    let box: RequestBox<NodeChildren> = takeBox(data)
    guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
    box.succeed(NodeChildren(names: stringArray(strings), stat: Stat(stat)))
}

let createCompletion: string_stat_completion_t = { rc, string, stat, data in
    let box: RequestBox<CreatedNode> = takeBox(data)
    guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
    box.succeed(CreatedNode(path: string.map { String(cString: $0) } ?? "", stat: Stat(stat)))
}

let aclCompletion: acl_completion_t = { rc, acl, stat, data in
    let box: RequestBox<([ACL], Stat)> = takeBox(data)
    guard rc == ZOK.rawValue else { return box.fail(rawCode: rc) }
    box.succeed((ACL.array(from: acl), Stat(stat)))
}

let syncCompletion: string_completion_t = { rc, _, data in
    let box: RequestBox<Void> = takeBox(data)
    if rc == ZOK.rawValue { box.succeed(()) } else { box.fail(rawCode: rc) }
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
