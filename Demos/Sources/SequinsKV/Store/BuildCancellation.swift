import Synchronization

/// Set when a version build's task is cancelled (its version was dropped); read by the build's
/// readers on their own threads, which cancellation does not reach.
final class BuildCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
