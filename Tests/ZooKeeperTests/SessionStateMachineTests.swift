import Testing
import ZooKeeperTesting
@testable import ZooKeeper

@Suite struct SessionStateMachineTests {
    typealias Machine = SessionStateMachine
    let timeout = Duration.seconds(4)

    func published(_ actions: [Machine.Action]) -> [SessionState] {
        actions.compactMap { if case .publish(let state) = $0 { return state } else { return nil } }
    }

    @Test func firstConnectionPublishesConnectingThenConnected() {
        var machine = Machine(reconnectAfterExpiry: true)
        #expect(machine.start() == [.publish(.connecting), .openHandle(generation: 1)])
        #expect(machine.start() == [])
        let actions = machine.handleEvent(.connected(sessionID: 7, negotiatedTimeout: timeout), generation: 1)
        #expect(published(actions) == [.connected(SessionInfo(sessionID: 7, negotiatedTimeout: timeout, generation: 1))])
    }

    @Test func disconnectSuspendsAndSchedulesPresumedExpiryForTheNegotiatedTimeout() {
        var machine = Machine(reconnectAfterExpiry: true)
        _ = machine.start()
        _ = machine.handleEvent(.connected(sessionID: 7, negotiatedTimeout: timeout), generation: 1)
        let info = SessionInfo(sessionID: 7, negotiatedTimeout: timeout, generation: 1)
        let actions = machine.handleEvent(.connecting, generation: 1)
        #expect(actions == [.publish(.suspended(info)), .schedulePresumedExpiry(after: timeout * 4 / 15, token: 1)])
        #expect(published(machine.presumedExpiryTimerFired(token: 1)) == [.presumedExpired(info)])
        // The server's verdict follows: expired, then a new session of the next generation.
        let expiry = machine.handleEvent(.expired, generation: 1)
        #expect(expiry == [
            .publish(.expired(info)), .closeHandle(generation: 1, error: .sessionExpired),
            .publish(.connecting), .openHandle(generation: 2),
        ])
        let next = SessionInfo(sessionID: 9, negotiatedTimeout: timeout, generation: 2)
        #expect(published(machine.handleEvent(.connected(sessionID: 9, negotiatedTimeout: timeout), generation: 2))
            == [.newSession(next), .connected(next)])
    }

    @Test func aReconnectInTimeCancelsThePresumedExpiry() {
        var machine = Machine(reconnectAfterExpiry: true)
        _ = machine.start()
        _ = machine.handleEvent(.connected(sessionID: 7, negotiatedTimeout: timeout), generation: 1)
        _ = machine.handleEvent(.connecting, generation: 1)
        _ = machine.handleEvent(.connected(sessionID: 7, negotiatedTimeout: timeout), generation: 1)
        #expect(machine.presumedExpiryTimerFired(token: 1) == [])
        // A second disconnect gets a new token; the old timer stays stale.
        _ = machine.handleEvent(.connecting, generation: 1)
        #expect(machine.presumedExpiryTimerFired(token: 1) == [])
        #expect(!machine.presumedExpiryTimerFired(token: 2).isEmpty)
    }

    @Test func eventsFromAnOldHandleAreIgnored() {
        var machine = Machine(reconnectAfterExpiry: true)
        _ = machine.start()
        _ = machine.handleEvent(.connected(sessionID: 7, negotiatedTimeout: timeout), generation: 1)
        _ = machine.handleEvent(.expired, generation: 1)
        #expect(machine.handleEvent(.connected(sessionID: 7, negotiatedTimeout: timeout), generation: 1) == [])
        #expect(machine.handleEvent(.expired, generation: 1) == [])
    }

    @Test func withoutReconnectExpiryIsFinalUntilClose() {
        var machine = Machine(reconnectAfterExpiry: false)
        _ = machine.start()
        _ = machine.handleEvent(.connected(sessionID: 7, negotiatedTimeout: timeout), generation: 1)
        let actions = machine.handleEvent(.expired, generation: 1)
        #expect(!actions.contains(.openHandle(generation: 2)))
        #expect(machine.handleEvent(.connected(sessionID: 8, negotiatedTimeout: timeout), generation: 1) == [])
        #expect(machine.close() == [.publish(.closed)])
    }

    @Test func closeIsIdempotentAndFinal() {
        var machine = Machine(reconnectAfterExpiry: true)
        _ = machine.start()
        #expect(machine.close() == [.closeHandle(generation: 1, error: .closed), .publish(.closed)])
        #expect(machine.close() == [])
        #expect(machine.handleEvent(.connected(sessionID: 1, negotiatedTimeout: timeout), generation: 1) == [])
        #expect(machine.start() == [])
    }

    /// Thousands of random event sequences: the published states always follow the documented
    /// order rules, generations only grow, and nothing follows `closed`.
    @Test func randomEventSequencesKeepTheInvariants() {
        var generator = SeededRandomNumberGenerator(seed: 0x16927933)
        for _ in 0..<3000 {
            var machine = Machine(reconnectAfterExpiry: Bool.random(using: &generator))
            var states: [SessionState] = []
            var lastGeneration = 0
            var tokens: [Int] = []
            var openedGenerations: [Int] = []
            var closedHandles: [Int] = []
            func apply(_ actions: [Machine.Action]) {
                for action in actions {
                    switch action {
                    case .publish(let state): states.append(state)
                    case .schedulePresumedExpiry(let delay, let token):
                        #expect(delay == timeout * 4 / 15)
                        tokens.append(token)
                    case .openHandle(let generation): openedGenerations.append(generation)
                    case .closeHandle(let generation, _): closedHandles.append(generation)
                    case .retryOpen: break
                    }
                }
            }
            apply(machine.start())
            for _ in 0..<Int.random(in: 1...40, using: &generator) {
                let generation = Bool.random(using: &generator) ? machine.generation : max(1, machine.generation - 1)
                switch Int.random(in: 0..<9, using: &generator) {
                case 0, 1: apply(machine.handleEvent(.connected(sessionID: Int64(machine.generation), negotiatedTimeout: timeout), generation: generation))
                case 2, 3: apply(machine.handleEvent(.connecting, generation: generation))
                case 4: apply(machine.handleEvent(.expired, generation: generation))
                case 5: apply(machine.handleEvent(.associating, generation: generation))
                case 6: if let token = tokens.randomElement(using: &generator) { apply(machine.presumedExpiryTimerFired(token: token)) }
                case 7: if Int.random(in: 0..<10, using: &generator) == 0 { apply(machine.close()) }
                default: if Int.random(in: 0..<20, using: &generator) == 0 { apply(machine.handleEvent(.authFailed, generation: generation)) }
                }
            }
            apply(machine.close())
            #expect(states.last == .closed)
            #expect(states.filter { $0 == .closed }.count == 1)
            #expect(openedGenerations == Array(1...(openedGenerations.count)))
            #expect(Set(closedHandles).count == closedHandles.count, "a handle closed twice: \(closedHandles)")
            for (previous, state) in zip(states, states.dropFirst()) {
                if let generation = state.session?.generation {
                    #expect(generation >= lastGeneration)
                    lastGeneration = generation
                }
                switch state {
                case .presumedExpired: #expect({ if case .suspended = previous { true } else { false } }(), "\(previous) → \(state)")
                case .suspended: #expect(previous.isConnected, "\(previous) → \(state)")
                case .newSession(let info):
                    #expect(info.generation > 1)
                    #expect(previous == .connecting)
                default: break
                }
            }
        }
    }
}
