/// The subscribers of a recipe's event streams (a ``TreeCache``'s events, a ``ServiceCache``'s
/// changes, a ``PersistentNode``'s states), kept in the recipe's locked state: each subscription
/// is a stream continuation of its own, known by an id so that its termination can remove it.
struct Subscribers<Continuation: Sendable> {
    private var continuations: [Int: Continuation] = [:]
    private var nextID = 0

    /// Adds a subscriber; its id, for ``remove(_:)``.
    mutating func add(_ continuation: Continuation) -> Int {
        nextID += 1
        continuations[nextID] = continuation
        return nextID
    }

    mutating func remove(_ id: Int) {
        continuations.removeValue(forKey: id)
    }

    /// Every subscriber, to yield to (under the lock, so that every subscriber sees one order).
    var all: Dictionary<Int, Continuation>.Values { continuations.values }

    /// Removes every subscriber and returns them, to be finished outside the lock.
    mutating func takeAll() -> [Continuation] {
        defer { continuations.removeAll() }
        return Array(continuations.values)
    }
}
