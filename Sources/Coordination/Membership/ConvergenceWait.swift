/// Waiting for a group to converge (sequins' `WaitToConverge`), as a pure value: the wait ends a
/// quiet period after it started, or after the last change of the members seen during it,
/// whichever is later, and never before the first snapshot has been read. Time is an input.
///
/// The first snapshot does not restart the period (sequins reads the initial listing as the wait
/// begins); every later snapshot that differs does. A group that changes more often than the
/// quiet period keeps the wait going, as in sequins.
public struct ConvergenceWait<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// How long the members must stay unchanged.
    public let quietPeriod: Duration
    /// When the wait may end (if a snapshot has been read by then).
    public private(set) var deadline: Instant
    /// The members last read, `nil` before the first snapshot.
    public private(set) var members: [String: [UInt8]]?

    /// A wait that started at `start`.
    public init(startedAt start: Instant, quietPeriod: Duration) {
        self.quietPeriod = quietPeriod
        deadline = start.advanced(by: quietPeriod)
    }

    /// Records a snapshot read at `instant`.
    public mutating func record(_ snapshot: [String: [UInt8]], at instant: Instant) {
        defer { members = snapshot }
        guard let members, members != snapshot else { return }
        deadline = max(deadline, instant.advanced(by: quietPeriod))
    }

    /// The converged members, once the wait is over at `instant`; `nil` while it goes on.
    public func converged(at instant: Instant) -> [String: [UInt8]]? {
        guard let members, instant >= deadline else { return nil }
        return members
    }
}
