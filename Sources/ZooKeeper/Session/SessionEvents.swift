/// The session's states as an `AsyncSequence`: the current state first, then every change,
/// finishing after ``SessionState/closed``.
///
/// Every iterator is its own subscriber with an unbounded buffer, so a slow consumer misses nothing.
public struct SessionEvents: AsyncSequence, Sendable {
    public typealias Element = SessionState
    let client: ZooKeeperClient

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<SessionState>.AsyncIterator

        public mutating func next() async -> SessionState? {
            await base.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> SessionState? {
            await base.next(isolation: actor)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        let (stream, continuation) = AsyncStream<SessionState>.makeStream(bufferingPolicy: .unbounded)
        let id = client.subscribe(continuation)
        let client = self.client
        continuation.onTermination = { _ in client.unsubscribe(id) }
        return AsyncIterator(base: stream.makeAsyncIterator())
    }
}
