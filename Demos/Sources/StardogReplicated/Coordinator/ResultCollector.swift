import Synchronization

/// The results of operations submitted together, each delivered on its own, the submitter
/// resumed once when the last one comes (one wake-up for a forwarded batch instead of a task
/// per operation).
final class ResultCollector<Value: Sendable>: Sendable {
    private struct State {
        var results: [Result<Value, any Error>?]
        var remaining: Int
    }
    private let state: Mutex<State>
    private let continuation: CheckedContinuation<[Result<Value, any Error>], Never>

    init(count: Int, continuation: CheckedContinuation<[Result<Value, any Error>], Never>) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
        self.continuation = continuation
    }

    /// Records the result of the operation at `index`; the last one resumes the submitter.
    func deliver(_ result: Result<Value, any Error>, at index: Int) {
        let complete = state.withLock { state -> [Result<Value, any Error>]? in
            precondition(state.results[index] == nil, "one result per operation")
            state.results[index] = result
            state.remaining -= 1
            return state.remaining == 0 ? state.results.map { $0! } : nil
        }
        if let complete { continuation.resume(returning: complete) }
    }
}
