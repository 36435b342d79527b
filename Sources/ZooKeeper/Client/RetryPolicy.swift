import Foundation

/// How ``ZooKeeperClient/withRetry(_:_:)`` retries an operation that failed without an answer
/// (`.connectionLoss`, `.operationTimeout`, `.throttled`): exponential backoff with jitter, at most
/// ``maxAttempts`` attempts and ``maxElapsed`` of trying, and never past the session's presumed
/// expiry. The schedule is a pure function of its inputs (``decision(afterAttempt:elapsed:random:)``).
///
/// Curator's `ExponentialBackoffRetry` and kazoo's `KazooRetry` are the same idea; unlike them,
/// the retries here also end when the session is presumed expired, because what the operation
/// relied on (an ephemeral node, a lock) may be gone by then.
public struct RetryPolicy: Sendable, Hashable {
    /// How many attempts in all, the first included. Default: 5.
    public var maxAttempts: Int = 5
    /// The delay before the first retry. Default: 100 ms.
    public var initialDelay: Duration = .milliseconds(100)
    /// What each delay is multiplied by for the next. Default: 2.
    public var multiplier: Double = 2
    /// The longest delay. Default: 5 seconds.
    public var maxDelay: Duration = .seconds(5)
    /// How much of each delay is random, from 0 (none) to 1 (anywhere between zero and the
    /// delay), so that clients that failed together do not retry together. Default: 0.5.
    public var jitter: Double = 0.5
    /// How long after the first attempt no retry starts any more (`nil`: no limit). Default: 30 s.
    public var maxElapsed: Duration? = .seconds(30)

    /// The defaults, as documented on each field.
    public init() {}

    /// Retries for as long as the session lasts (no count or time limit; the delays grow to one
    /// second): for reads a recipe needs whatever the network does, up to the session's loss.
    public static var untilSessionLost: RetryPolicy {
        var policy = RetryPolicy()
        policy.maxAttempts = .max
        policy.maxDelay = .seconds(1)
        policy.maxElapsed = nil
        return policy
    }

    /// A policy that never retries.
    public static var never: RetryPolicy {
        var policy = RetryPolicy()
        policy.maxAttempts = 1
        return policy
    }

    /// What to do after a failed attempt.
    public enum Decision: Sendable, Hashable {
        /// Try again after this delay.
        case retry(after: Duration)
        /// Give up: the attempts or the time are used up.
        case giveUp
    }

    /// The delay before retry number `retry` (1 for the first retry) with `random` in `[0, 1)`:
    /// `initialDelay × multiplier^(retry − 1)`, capped at `maxDelay`, of which the `jitter` share is
    /// scaled by `random`.
    public func delay(beforeRetry retry: Int, random: Double) -> Duration {
        let exponent = Double(max(retry - 1, 0))
        let ceiling = max(maxDelay.seconds, 0)
        var nominal = initialDelay.seconds * pow(multiplier, exponent)
        // 0 × ∞ (a zero initial delay after a thousand retries) is NaN, and a huge maxDelay
        // overflows nanoseconds: both are held to what a Duration can say.
        if !nominal.isFinite || nominal < 0 { nominal = nominal.isNaN || nominal < 0 ? 0 : ceiling }
        nominal = min(nominal, ceiling)
        let jitter = min(max(self.jitter.isNaN ? 0 : self.jitter, 0), 1)
        let seconds = nominal * (1 - jitter) + nominal * jitter * min(max(random.isNaN ? 0 : random, 0), 1)
        return .nanoseconds(Int64(min(seconds * 1e9, Double(Int64.max / 2))))
    }

    /// Whether to retry after attempt number `attempt` (1 for the first) failed, `elapsed` after
    /// the first attempt started.
    public func decision(afterAttempt attempt: Int, elapsed: Duration, random: Double) -> Decision {
        guard attempt < maxAttempts else { return .giveUp }
        let delay = delay(beforeRetry: attempt, random: random)
        if let maxElapsed, elapsed + delay > maxElapsed { return .giveUp }
        return .retry(after: delay)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
