/// The one batch-runner that lingers for more operations before its batch leaves (a
/// coordinator's round, a member's forward to the coordinator), kept in its owner's locked state
/// so that "not enough yet" and "wait" are one step. The submission that makes the operations
/// enough takes the waiter out (``take(ifID:)``) and resumes it, or the deadline does
/// (``linger(until:register:expire:)``).
struct LingerSlot {
    private var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
    private var lastID = 0

    var isOccupied: Bool { waiter != nil }
    /// How many lingers began (for tests).
    var lingersBegun: Int { lastID }

    /// Puts `continuation` in the slot; its id, for the deadline.
    mutating func hold(_ continuation: CheckedContinuation<Void, Never>) -> Int {
        lastID += 1
        waiter = (lastID, continuation)
        return lastID
    }

    /// The waiting continuation (only if it is `id`'s, with an id), taken out: the caller resumes
    /// it once the lock is released.
    mutating func take(ifID id: Int? = nil) -> CheckedContinuation<Void, Never>? {
        guard let waiter, id == nil || waiter.id == id else { return nil }
        self.waiter = nil
        return waiter.continuation
    }

    /// Lingers until a submission takes the waiter out, or `deadline`. `register` runs under the
    /// owner's lock: it holds the continuation in the slot and returns its id, or returns `nil`
    /// when the operations are enough already; `expire` takes it out under the lock by its id.
    static func linger(
        until deadline: ContinuousClock.Instant,
        register: (CheckedContinuation<Void, Never>) -> Int?,
        expire: @escaping @Sendable (Int) -> CheckedContinuation<Void, Never>?
    ) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            guard let id = register(continuation) else { return continuation.resume() }
            Task {
                try? await Task.sleep(until: deadline)
                expire(id)?.resume()
            }
        }
    }
}
