import Synchronization

/// A flag that work running on threads of its own (``runOffPool(_:)``, which task cancellation
/// does not reach) reads to learn that nobody wants its result any more: a version build whose
/// version was dropped, a search whose caller stopped waiting.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isSet: Bool { flag.load(ordering: .relaxed) }

    public func set() { flag.store(true, ordering: .relaxed) }
}
