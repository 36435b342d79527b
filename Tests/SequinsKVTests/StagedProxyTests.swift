import Testing

@testable import SequinsKV

/// sequins' `proxy_test.go` cases, with its timers scaled by ten (3 s in all, 1 s per stage,
/// where sequins uses 300 ms and 100 ms) so a loaded test machine keeps their order.
@Suite struct StagedProxyTests {
    let proxy = StagedProxy(totalTimeout: .seconds(3), stageTimeout: .seconds(1))

    enum Peer: Sendable {
        case good(after: Duration)
        case error(after: Duration)
        case mustNotBeReached
    }

    struct PeerError: Error {}

    final class Contacts: @unchecked Sendable {
        private let lock = NSLockLike()
        private var names: [String] = []
        func add(_ name: String) { lock.run { self.names.append(name) } }
        var all: [String] { lock.run { names } }
    }

    /// For cases about order rather than timing: stages and the total so long that a loaded
    /// machine cannot reach them.
    let patient = StagedProxy(totalTimeout: .seconds(60), stageTimeout: .seconds(30))

    func run(_ peers: [Peer], with proxy: StagedProxy? = nil) async -> (Result<(peer: String, answer: String), StagedProxy.Failure>, [String]) {
        let proxy = proxy ?? self.proxy
        let contacts = Contacts()
        let names = peers.indices.map { "peer\($0)" }
        let result = await proxy.run(
            peers: names,
            attempt: { name in
                contacts.add(name)
                switch peers[names.firstIndex(of: name)!] {
                case .good(let delay):
                    try await Task.sleep(for: delay)
                    return "answer from \(name)"
                case .error(let delay):
                    try await Task.sleep(for: delay)
                    throw PeerError()
                case .mustNotBeReached:
                    Issue.record("\(name) must not be contacted")
                    return "wrong"
                }
            }, isGood: { _ in true })
        return (result, contacts.all)
    }

    @Test func singlePeer() async throws {
        let (result, _) = await run([.good(after: .zero)])
        #expect(try result.get().peer == "peer0")
    }

    @Test func slowPeerIsBackedUpByTheNext() async throws {
        let (result, contacts) = await run([.good(after: .seconds(10)), .good(after: .zero), .mustNotBeReached])
        #expect(try result.get().peer == "peer1")
        #expect(contacts == ["peer0", "peer1"])
    }

    @Test func anErrorMovesOnAtOnce() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let (result, _) = await run([.error(after: .zero), .good(after: .zero), .mustNotBeReached], with: patient)
        #expect(try result.get().peer == "peer1")
        #expect(clock.now - started < .seconds(30), "the second peer was asked before its stage began")
    }

    @Test func aSlowGoodAnswerStillWinsAfterTheBackupFails() async throws {
        let (result, _) = await run([.good(after: .milliseconds(1500)), .error(after: .zero)])
        #expect(try result.get().peer == "peer0")
    }

    @Test func timesOutAfterThreeStages() async {
        let (result, contacts) = await run([.good(after: .seconds(20)), .good(after: .seconds(20)), .good(after: .seconds(20)), .mustNotBeReached])
        guard case .failure(.timeout) = result else {
            Issue.record("expected a timeout, got \(result)")
            return
        }
        #expect(contacts.count == 3)
    }

    @Test func allErrorsMeanNoAvailablePeers() async {
        let (result, _) = await run([.error(after: .zero), .error(after: .zero), .error(after: .zero)], with: patient)
        guard case .failure(.noAvailablePeers) = result else {
            Issue.record("expected noAvailablePeers, got \(result)")
            return
        }
    }

    @Test func noPeersMeansNoAvailablePeers() async {
        let (result, _) = await run([], with: patient)
        guard case .failure(.noAvailablePeers) = result else {
            Issue.record("expected noAvailablePeers, got \(result)")
            return
        }
    }
}

/// A tiny lock for the test's bookkeeping.
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func run<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}

#if canImport(Glibc)
import Glibc
#endif
