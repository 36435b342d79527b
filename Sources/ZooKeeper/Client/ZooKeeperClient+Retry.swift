extension ZooKeeperClient {
    /// Runs `operation`, and again, as `policy` says, while it fails without an answer
    /// (``ZooKeeperError/isRetryable``: `.connectionLoss`, `.operationTimeout`, `.throttled`).
    ///
    /// Before a retry it waits the policy's delay and, if the connection is down, for the client
    /// to reconnect to the same session. It stops retrying, and throws the last error, as soon as
    /// the session is presumed expired, expires, or is replaced by a new one: an operation that
    /// relied on the session (its ephemeral nodes, a lock it holds) must start over from a fresh
    /// read then, which only the caller can do. An operation begun while no session was open
    /// (one being opened, after an expiry) runs on the session that opens. Other errors are
    /// thrown at once.
    ///
    /// Safe to retry as they are: reads (`getData`, `exists`, `getChildren`, `sync`), an
    /// unconditional `setData` (the last write wins), `deleteIfExists`, `childrenIfExists`,
    /// `createPath`. Not safe as they are, because the first attempt may have been applied: a
    /// `create` (the retry fails with `.nodeExists`, or a sequential create makes a second node:
    /// put a unique id in the name and look for it after a loss, as the recipes do), a versioned
    /// `setData` or `delete` (the retry fails with `.badVersion` or `.noNode`: read again and
    /// decide), a `multi` (check its effect before retrying).
    /// - Throws: the operation's last error, or `CancellationError`.
    public func withRetry<R>(_ policy: RetryPolicy = RetryPolicy(), _ operation: () async throws -> R) async throws -> R {
        let started = ContinuousClock.now
        let generation = state.session?.generation
        var attempt = 1
        while true {
            do {
                return try await operation()
            } catch let error as ZooKeeperError where error.isRetryable {
                guard case .retry(let delay) = policy.decision(afterAttempt: attempt, elapsed: .now - started, random: .random(in: 0..<1)) else {
                    throw error
                }
                try await Task.sleep(for: delay)
                guard try await awaitSameSession(generation: generation) else { throw error }
                attempt += 1
            }
        }
    }

    /// Waits until the client is connected on session `generation`; `false` as soon as that
    /// session is presumed expired, expires or is replaced (or the client closes). With no
    /// session when the operation began (`nil`: one being opened), the session that opens is it.
    private func awaitSameSession(generation: Int?) async throws -> Bool {
        for await state in sessionEvents {
            try Task.checkCancellation()
            switch state {
            case .connected(let info), .readOnly(let info):
                return generation == nil || info.generation == generation
            case .newSession where generation == nil:
                continue
            case .newSession, .presumedExpired, .expired, .closed, .authFailed:
                return false
            case .connecting, .suspended:
                continue
            }
        }
        throw CancellationError()
    }
}
