/// An operation queued to go out in a batch (a coordinator round, a forward to the coordinator):
/// its weight against the batch's limit, and where its result goes.
struct WaitingOperation<Operation: Sendable, Value: Sendable>: Sendable {
    let operation: Operation
    let weight: Int
    let deliver: @Sendable (Result<Value, any Error>) -> Void
}

extension Array {
    /// Removes and returns the oldest operations whose weights add up to at most `maxWeight`, and
    /// always at least one (an operation heavier than that goes alone).
    mutating func removeBatch<Operation, Value>(maxWeight: Int) -> [Element] where Element == WaitingOperation<Operation, Value> {
        var total = 0
        var count = 0
        for waiting in self {
            if count > 0 && total + waiting.weight > maxWeight { break }
            total += waiting.weight
            count += 1
        }
        let batch = Array(prefix(count))
        removeFirst(count)
        return batch
    }
}
