import Synchronization
import ZooKeeper

/// Picks an instance of a service from its ``ServiceCache`` (Curator's `ServiceProvider`), leaving
/// out the instances reported down (``noteError(_:)``) and those not enabled.
///
/// ```swift
/// let cache = discovery.cache(of: "api")
/// cache.start()
/// try await cache.waitUntilInitialized()
/// let provider = ServiceProvider(cache: cache, strategy: .roundRobin)
/// if let instance = provider.instance() { print(instance.address ?? "", instance.port ?? 0) }
/// ```
public final class ServiceProvider: Sendable {
    /// How an instance is picked.
    public enum Strategy: Sendable, Hashable {
        /// Each in turn.
        case roundRobin
        /// Any, at random.
        case random
        /// The same one as long as it is there, then another by round robin.
        case sticky
    }

    /// The instances it picks from.
    public let cache: ServiceCache
    /// How it picks.
    public let strategy: Strategy
    private let state: Mutex<State>

    private struct State {
        var next = 0
        var stuck: ServiceInstance?
        var down: DownInstances
    }

    /// A provider over `cache`.
    public init(cache: ServiceCache, strategy: Strategy = .roundRobin, downInstancePolicy: DownInstances.Policy = .init()) {
        self.cache = cache
        self.strategy = strategy
        state = Mutex(State(down: DownInstances(policy: downInstancePolicy)))
    }

    /// An instance, or `nil` when none is available.
    public func instance() -> ServiceInstance? {
        let all = cache.instances()
        return state.withLock { state -> ServiceInstance? in
            // Most lookups find nobody down: pick from the cache's list as it is.
            let candidates = state.down.isEmpty && all.allSatisfy(\.enabled)
                ? all : all.filter { [now = ContinuousClock.now] in $0.enabled && !state.down.isDown($0.id, at: now) }
            guard !candidates.isEmpty else { return nil }
            switch strategy {
            case .random:
                return candidates.randomElement()
            case .roundRobin, .sticky:
                if strategy == .sticky, let stuck = state.stuck, candidates.contains(stuck) { return stuck }
                let picked = candidates[state.next % candidates.count]
                state.next &+= 1
                if strategy == .sticky { state.stuck = picked }
                return picked
            }
        }
    }

    /// The instances it would pick from now.
    public func instances() -> [ServiceInstance] {
        let now = ContinuousClock.now
        let all = cache.instances()
        return state.withLock { state in all.filter { $0.enabled && !state.down.isDown($0.id, at: now) } }
    }

    /// Reports that a request to `instance` failed: after the policy's threshold of errors it is
    /// left out for the policy's timeout.
    public func noteError(_ instance: ServiceInstance) {
        let now = ContinuousClock.now
        state.withLock { $0.down.noteError(instance.id, at: now) }
    }
}

/// Which instances are down: those with `threshold` errors reported since their first error, for
/// `timeout` from that first error (Curator's `DownInstancePolicy`: 2 errors, 30 seconds). Pure:
/// time is an input.
public struct DownInstances: Sendable {
    /// When an instance is down and for how long.
    public struct Policy: Sendable, Hashable {
        /// How long an instance stays down, from its first error. Default: 30 seconds.
        public var timeout: Duration
        /// How many errors make it down. Default: 2.
        public var threshold: Int
        /// A policy (Curator's defaults).
        public init(timeout: Duration = .seconds(30), threshold: Int = 2) {
            self.timeout = timeout
            self.threshold = threshold
        }
    }

    /// The policy.
    public let policy: Policy
    private var errors: [String: (count: Int, since: ContinuousClock.Instant)] = [:]

    /// No instance down.
    public init(policy: Policy) {
        self.policy = policy
    }

    /// Records an error of instance `id` at `instant`.
    public mutating func noteError(_ id: String, at instant: ContinuousClock.Instant) {
        purge(at: instant)
        let entry = errors[id] ?? (0, instant)
        errors[id] = (entry.count + 1, entry.since)
    }

    /// Whether no error is recorded (no instance can be down).
    public var isEmpty: Bool { errors.isEmpty }

    /// Whether instance `id` is down at `instant`.
    public func isDown(_ id: String, at instant: ContinuousClock.Instant) -> Bool {
        guard let entry = errors[id] else { return false }
        return entry.count >= policy.threshold && instant - entry.since < policy.timeout
    }

    private mutating func purge(at instant: ContinuousClock.Instant) {
        errors = errors.filter { instant - $0.value.since < policy.timeout }
    }
}
