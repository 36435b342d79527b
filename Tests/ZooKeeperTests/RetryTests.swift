import Foundation
import Synchronization
import Testing
import ZooKeeper
import ZooKeeperTesting

@Suite struct RetryPolicyTests {
    /// The schedule on many random policies: delays grow by the multiplier up to the cap, stay
    /// within their jitter band, and the policy gives up after its attempts or its time.
    @Test func theScheduleKeepsItsBounds() {
        var generator = SeededRandomNumberGenerator(seed: 21)
        for _ in 0..<5_000 {
            var policy = RetryPolicy()
            policy.maxAttempts = Int.random(in: 1...12, using: &generator)
            policy.initialDelay = .milliseconds(Int.random(in: 1...500, using: &generator))
            policy.multiplier = Double.random(in: 1...3, using: &generator)
            policy.maxDelay = .milliseconds(Int.random(in: 500...10_000, using: &generator))
            policy.jitter = Double.random(in: 0...1, using: &generator)
            policy.maxElapsed = Bool.random(using: &generator) ? nil : .milliseconds(Int.random(in: 0...60_000, using: &generator))
            var elapsed = Duration.zero
            var attempt = 1
            var previousNominal = 0.0
            while case .retry(let delay) = policy.decision(afterAttempt: attempt, elapsed: elapsed, random: Double.random(in: 0..<1, using: &generator)) {
                let nominal = min(policy.initialDelay.inSeconds * pow(policy.multiplier, Double(attempt - 1)), policy.maxDelay.inSeconds)
                #expect(nominal >= previousNominal)
                #expect(delay.inSeconds <= nominal + 1e-6)
                #expect(delay.inSeconds >= nominal * (1 - policy.jitter) - 1e-6)
                #expect(delay <= policy.maxDelay)
                previousNominal = nominal
                elapsed += delay
                if let maxElapsed = policy.maxElapsed { #expect(elapsed <= maxElapsed) }
                attempt += 1
            }
            #expect(attempt <= policy.maxAttempts)
        }
        #expect(RetryPolicy.never.decision(afterAttempt: 1, elapsed: .zero, random: 0.5) == .giveUp)
        var fixed = RetryPolicy()
        fixed.jitter = 0
        #expect(fixed.delay(beforeRetry: 1, random: 0.9) == .milliseconds(100))
        #expect(fixed.delay(beforeRetry: 3, random: 0.1) == .milliseconds(400))
        #expect(fixed.delay(beforeRetry: 20, random: 0.1) == .seconds(5))
        // Extreme settings give a delay, never a trap: a zero initial delay after thousands of
        // retries (0 × ∞), a delay cap past what nanoseconds can count, a NaN jitter.
        var extreme = RetryPolicy()
        extreme.initialDelay = .zero
        #expect(extreme.delay(beforeRetry: 5_000, random: 0.5) == .zero)
        extreme.initialDelay = .seconds(1)
        extreme.maxDelay = .seconds(Int64.max)
        extreme.jitter = .nan
        #expect(extreme.delay(beforeRetry: 5_000, random: .nan) > .seconds(1_000_000))
    }
}

@Suite struct WithRetryTests {
    /// A read through a proxy that cuts every connection for a while: the first attempts fail with
    /// `.connectionLoss`, and the retry succeeds on the same session once the network is back.
    @Test(.timeLimit(.minutes(1))) func aReadIsRetriedAcrossACutConnection() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try ZooKeeperClient(connectString: proxy.connectString, configuration: configuration(sessionTimeout: .seconds(6)))
        let session = try await client.connect()
        let path = uniquePath()
        try await client.create(path, data: Array("value".utf8))

        let attempts = Mutex(0)
        proxy.cut()
        let healer = Task {
            try await Task.sleep(for: .milliseconds(600))
            proxy.restore()
        }
        var policy = RetryPolicy()
        policy.maxAttempts = 20
        policy.initialDelay = .milliseconds(50)
        let node = try await client.withRetry(policy) {
            attempts.withLock { $0 += 1 }
            return try await client.getData(path)
        }
        try await healer.value
        #expect(node.string == "value")
        #expect(attempts.withLock { $0 } > 1, "the first attempt failed while the connection was cut")
        #expect(client.state.session?.sessionID == session.sessionID)
        await client.close()
        await proxy.shutdown()
    }

    /// Retries stop once the session is presumed expired: the caller gets the error instead of a
    /// success on a session that may have lost what the operation relied on.
    @Test(.timeLimit(.minutes(1))) func retriesEndWhenTheSessionIsPresumedExpired() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try ZooKeeperClient(connectString: proxy.connectString, configuration: configuration(sessionTimeout: .seconds(2)))
        try await client.connect()
        proxy.blackhole()
        var policy = RetryPolicy()
        policy.maxAttempts = 1_000
        policy.initialDelay = .milliseconds(20)
        policy.maxDelay = .milliseconds(50)
        policy.maxElapsed = nil
        let started = ContinuousClock.now
        do {
            _ = try await client.withRetry(policy) { try await client.exists("/") }
            Issue.record("a request through a blackhole succeeded")
        } catch let error as ZooKeeperError {
            #expect(error.isRetryable, "the last attempt's error (\(error))")
        }
        #expect(ContinuousClock.now - started < .seconds(20), "gave up at the presumed expiry, not after a thousand attempts")
        proxy.restore()
        await client.close()
        await proxy.shutdown()
    }

    @Test func otherErrorsAreNotRetried() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let attempts = Mutex(0)
            await expectError(.noNode) {
                try await client.withRetry {
                    attempts.withLock { $0 += 1 }
                    return try await client.getData(uniquePath())
                }
            }
            #expect(attempts.withLock { $0 } == 1)
        }
    }

    /// Begun right after an expiry, while the new session is being opened (no session yet), an
    /// operation is retried on the session that opens rather than given up as "session lost".
    @Test(.timeLimit(.minutes(1))) func anOperationBegunWhileANewSessionOpensRunsOnIt() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            for _ in 0..<3 {
                try await client.expireSessionForTesting()
                let stat = try await client.withRetry(.untilSessionLost) { try await client.exists("/") }
                #expect(stat != nil)
            }
        }
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
