import DemoSupport
import DemoTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing
import ZooKeeperTesting

@testable import SequinsKV

/// sequins' `proxy_test.go` cases as event sequences on the pure machine (its timers, 300 ms in
/// all and 100 ms per stage, become the order of the events), then the shell with real requests.
@Suite struct StagedProxyTests {
    typealias Machine = StagedProxyMachine

    @Test func singlePeer() {
        var machine = Machine(peerCount: 1)
        #expect(machine.start() == [.ask(peer: 0, stage: 1)])
        #expect(machine.answered(peer: 0, good: true) == [.finish(.answer(peer: 0))])
    }

    @Test func aSlowPeerIsBackedUpByTheNextAndTheThirdIsNeverAsked() {
        var machine = Machine(peerCount: 3)
        _ = machine.start()
        #expect(machine.stageElapsed(1) == [.ask(peer: 1, stage: 2)])
        #expect(machine.answered(peer: 1, good: true) == [.finish(.answer(peer: 1))])
        #expect(machine.asked == 2)
        #expect(machine.answered(peer: 0, good: true) == [], "a late answer after the finish changes nothing")
    }

    @Test func anErrorAsksTheNextPeerAtOnce() {
        var machine = Machine(peerCount: 3)
        _ = machine.start()
        #expect(machine.answered(peer: 0, good: false) == [.ask(peer: 1, stage: 2)])
        #expect(machine.answered(peer: 1, good: true) == [.finish(.answer(peer: 1))])
        #expect(machine.asked == 2)
    }

    @Test func aSlowGoodAnswerWinsAfterTheBackupFails() {
        var machine = Machine(peerCount: 2)
        _ = machine.start()
        #expect(machine.stageElapsed(1) == [.ask(peer: 1, stage: 2)])
        #expect(machine.answered(peer: 1, good: false) == [], "peer 0 is still outstanding")
        #expect(machine.answered(peer: 0, good: true) == [.finish(.answer(peer: 0))])
    }

    @Test func theTotalTimeoutEndsTheRunAndTheFourthPeerIsNeverAsked() {
        var machine = Machine(peerCount: 4)
        _ = machine.start()
        #expect(machine.stageElapsed(1) == [.ask(peer: 1, stage: 2)])
        #expect(machine.stageElapsed(2) == [.ask(peer: 2, stage: 3)])
        #expect(machine.totalElapsed() == [.finish(.timeout)])
        #expect(machine.stageElapsed(3) == [])
        #expect(machine.asked == 3)
    }

    @Test func onlyErrorsMeanNoAvailablePeers() {
        var machine = Machine(peerCount: 3)
        _ = machine.start()
        #expect(machine.answered(peer: 0, good: false) == [.ask(peer: 1, stage: 2)])
        #expect(machine.answered(peer: 1, good: false) == [.ask(peer: 2, stage: 3)])
        #expect(machine.answered(peer: 2, good: false) == [.finish(.noAvailablePeers)])
        var empty = Machine(peerCount: 0)
        #expect(empty.start() == [.finish(.noAvailablePeers)])
    }

    @Test func anOlderStageEndingAsksNobody() {
        var machine = Machine(peerCount: 3)
        _ = machine.start()
        #expect(machine.answered(peer: 0, good: false) == [.ask(peer: 1, stage: 2)])
        #expect(machine.stageElapsed(1) == [])
        #expect(machine.stageElapsed(2) == [.ask(peer: 2, stage: 3)])
    }

    @Test func randomEventsKeepTheInvariants() {
        var generator = SeededRandomNumberGenerator(seed: 0x884958b0)
        for _ in 0..<3000 {
            let peers = Int.random(in: 0...5, using: &generator)
            var machine = Machine(peerCount: peers)
            var asks: [Int] = []
            var finishes: [Machine.Outcome] = []
            var answered = Set<Int>()
            func apply(_ actions: [Machine.Action]) {
                for action in actions {
                    switch action {
                    case .ask(let peer, _): asks.append(peer)
                    case .finish(let outcome): finishes.append(outcome)
                    }
                }
            }
            apply(machine.start())
            for _ in 0..<20 {
                switch Int.random(in: 0..<4, using: &generator) {
                case 0:
                    if let peer = asks.filter({ !answered.contains($0) }).randomElement(using: &generator) {
                        answered.insert(peer)
                        apply(machine.answered(peer: peer, good: Bool.random(using: &generator)))
                    }
                case 1: apply(machine.stageElapsed(machine.stage))
                case 2: apply(machine.stageElapsed(Int.random(in: 0...machine.stage, using: &generator)))
                default: if Int.random(in: 0..<5, using: &generator) == 0 { apply(machine.totalElapsed()) }
                }
            }
            #expect(asks == Array(0..<asks.count), "peers are asked in order, each once")
            #expect(asks.count <= peers)
            #expect(finishes.count <= 1)
            if case .answer(let peer)? = finishes.first { #expect(answered.contains(peer)) }
            #expect(finishes.isEmpty == !machine.finished)
            if !machine.finished { #expect(machine.outstanding > 0, "a run with nothing outstanding has finished") }
        }
    }

    // The shell, with real tasks; no timing is asserted.

    struct PeerError: Error {}

    @Test func theShellReturnsTheFirstGoodAnswer() async throws {
        let proxy = StagedProxy(totalTimeout: .seconds(60), stageTimeout: .seconds(30))
        let result = await proxy.run(
            peers: ["bad", "good", "unused"],
            attempt: { peer in
                if peer == "bad" { throw PeerError() }
                if peer == "unused" { Issue.record("a third peer was asked after a good answer") }
                return "answer from \(peer)"
            }, isGood: { _ in true })
        let (peer, answer) = try result.get()
        #expect(peer == "good")
        #expect(answer == "answer from good")
    }

    @Test func theShellTimesOutWhenNobodyAnswers() async {
        let proxy = StagedProxy(totalTimeout: .milliseconds(200), stageTimeout: .milliseconds(50))
        let result = await proxy.run(
            peers: ["a", "b"],
            attempt: { _ -> String in
                try await Task.sleep(for: .seconds(3600))
                return "never"
            }, isGood: { _ in true })
        #expect(throws: StagedProxy.Failure.timeout) { try result.get() }
    }

    @Test func theShellReportsNoAvailablePeersForBadAnswers() async {
        let proxy = StagedProxy(totalTimeout: .seconds(60), stageTimeout: .seconds(30))
        let result = await proxy.run(peers: ["a", "b"], attempt: { _ in 500 }, isGood: { $0 == 200 })
        #expect(throws: StagedProxy.Failure.noAvailablePeers) { try result.get() }
    }

    /// One event loop, so every request shares one pool.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    @Test func theStagedProxyRunsOnTheClient() async throws {
        let good = try await RawPeer.start(on: Self.group, .answerThenClose)
        defer { good.stop() }
        let silent = try await RawPeer.start(on: Self.group, .neverAnswer)
        defer { silent.stop() }
        let client = PeerClient(group: Self.group)
        defer { client.shutdown() }
        // The silent peer is asked first; its stage ends and the good one answers.
        let proxy = StagedProxy(totalTimeout: .seconds(60), stageTimeout: .milliseconds(100))
        let result = await proxy.run(
            peers: [silent.address, good.address], on: Self.group.next(),
            start: { client.request(peer: $0, path: "/db/key?proxy=v1") }, isGood: { $0.status == 200 })
        let (peer, answer) = try result.get()
        #expect(peer == good.address)
        #expect(String(buffer: answer.body) == "ok")
        try await eventually("the silent peer's request was cancelled", timeout: .seconds(30)) { silent.closedConnections == 1 }
    }
}
