import Testing
import ZooKeeper
import ZooKeeperTesting
@testable import Coordination

@Suite struct LeaderElectionTests {
    /// Candidates take turns; at every moment at most one believes it leads, and observers
    /// (participants or not) follow every leader and payload.
    @Test func oneLeaderAtATimeAndObserversFollow() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let observerClient = try await connectedTestClient(server.connectString)
        var observed = LeaderElection(client: observerClient, path: path, participantID: "observer").observe().makeAsyncIterator()
        #expect(try await observed.next() == .vacant)

        let leaders = Shared(0)
        let violations = Shared(0)
        let order = Shared<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                group.addTask {
                    let client = try await connectedTestClient(server.connectString)
                    let election = LeaderElection(client: client, path: path, participantID: "p\(index)")
                    try await election.whileLeader(payload: Array("payload-\(index)".utf8)) { term in
                        if leaders.withLock({ $0 += 1; return $0 }) != 1 { violations.withLock { $0 += 1 } }
                        order.withLock { $0.append("p\(index)") }
                        try await term.proclaim(Array("updated-\(index)".utf8))
                        try await Task.sleep(for: .milliseconds(300))
                        leaders.withLock { $0 -= 1 }
                    }
                    await client.close()
                }
            }
            try await group.waitForAll()
        }
        #expect(violations.value == 0)
        #expect(Set(order.value) == ["p0", "p1", "p2"])
        // The observer saw each leader; the last state is "no leader".
        var seen: [String] = []
        while let update = try await observed.next() {
            guard case .leader(let leader) = update else { if seen.count >= 3 { break } else { continue } }
            if seen.last != leader.participantID { seen.append(leader.participantID) }
        }
        #expect(seen == order.value)
        await observerClient.close()
    }

    @Test func proclaimUpdatesThePayloadOnlyWhileLeading() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let election = LeaderElection(client: client, path: path, participantID: "solo")
        let term = try await election.campaign(payload: Array("v1".utf8))
        #expect(try await election.currentLeader()?.payload == Array("v1".utf8))
        try await term.proclaim(Array("v2".utf8))
        let leader = try #require(try await election.currentLeader())
        #expect(leader.payload == Array("v2".utf8))
        #expect(leader.participantID == "solo")
        #expect(leader.epoch == term.epoch)
        await term.resign()
        do {
            try await term.proclaim(Array("v3".utf8))
            Issue.record("proclaimed after resigning")
        } catch let error as CoordinationError {
            #expect(error.code == .lost)
        }
        #expect(try await election.currentLeader() == nil)
        let next = try await election.campaign()
        #expect(next.epoch > term.epoch, "each term has a larger epoch")
        await next.resign()
        await client.close()
    }

    /// Partition the leader: it steps down before another candidate is told it leads.
    @Test func leadershipLossIsSignalledBeforeTakeover() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let path = uniqueTestPath()
        let leaderClient = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(3))
        let otherClient = try await connectedTestClient(server.connectString, sessionTimeout: .seconds(3))
        let term = try await LeaderElection(client: leaderClient, path: path, participantID: "a").campaign()
        let lostAt = Shared<ContinuousClock.Instant?>(nil)
        let watcher = Task {
            _ = await term.waitUntilLost()
            lostAt.withLock { $0 = .now }
        }
        let takeover = Task {
            let term = try await LeaderElection(client: otherClient, path: path, participantID: "b").campaign(timeout: .seconds(30))
            return (term, ContinuousClock.now)
        }
        try await Task.sleep(for: .milliseconds(200))
        proxy.blackhole()
        let (newTerm, ledAt) = try await takeover.value
        await watcher.value
        let lost = try #require(lostAt.value)
        #expect(lost < ledAt)
        await newTerm.resign()
        await leaderClient.close()
        await otherClient.close()
        await proxy.shutdown()
    }

    /// CURATOR-696: after an expiry the old session's node may still be listed; the candidate must
    /// not lead through it. Here the old node stays (held by a second handle on the old session
    /// would be racy, so another live session plays it) and the candidate queues behind it.
    @Test func aStaleNodeAfterExpiryNeverMakesASecondLeader() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let electionA = LeaderElection(client: a, path: path, participantID: "a")
        let first = try await electionA.campaign()
        try await a.expireSessionForTesting()
        #expect(await first.waitUntilLost() == .sessionLost)
        // B leads now; A campaigns again on its new session and must wait behind B.
        let termB = try await LeaderElection(client: b, path: path, participantID: "b").campaign(timeout: .seconds(20))
        let again = Task { try await electionA.campaign(timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(500))
        #expect(termB.isLeader)
        #expect(try await electionA.currentLeader()?.participantID == "b")
        await termB.resign()
        let termA = try await again.value
        #expect(termA.isLeader)
        #expect(termA.epoch > termB.epoch)
        await termA.resign()
        await first.resign()
        await a.close()
        await b.close()
    }

    @Test func cancellingACampaignRemovesTheCandidate() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let term = try await LeaderElection(client: a, path: path, participantID: "a").campaign()
        let waiting = Task { try await LeaderElection(client: b, path: path, participantID: "b").campaign() }
        try await eventually("b is a candidate") { try await a.childrenIfExists(path).count == 2 }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        try await eventually("b's node is gone") { try await a.childrenIfExists(path).count == 1 }
        await term.resign()
        await a.close()
        await b.close()
    }

    /// `leadEveryTerm` (Curator's autoRequeue): after its session expires the participant queues
    /// again, behind the one that took over, and leads again once that one resigns; the
    /// participants are listed in queue order.
    @Test(.timeLimit(.minutes(1))) func leadEveryTermQueuesAgainAfterLosingLeadership() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let terms = Shared(0)
        let electionA = LeaderElection(client: a, path: path, participantID: "a")
        let requeueing = Task {
            try await electionA.leadEveryTerm { term in
                terms.withLock { $0 += 1 }
                _ = await term.waitUntilLost()
            }
        }
        try await eventually("a leads") { terms.value == 1 }
        let electionB = LeaderElection(client: b, path: path, participantID: "b")
        let campaignB = Task { try await electionB.campaign() }
        try await eventually("b is queued") { try await electionB.participants().count == 2 }
        #expect(try await electionB.participants() == [.init(id: "a", isLeader: true), .init(id: "b", isLeader: false)])

        try await a.expireSessionForTesting()
        let termB = try await campaignB.value
        try await eventually("a queued again behind b") {
            try await electionB.participants() == [.init(id: "b", isLeader: true), .init(id: "a", isLeader: false)]
        }
        #expect(terms.value == 1)
        await termB.resign()
        try await eventually("a leads again") { terms.value == 2 }
        requeueing.cancel()
        if case .failure(let error) = await requeueing.result { #expect(error is CancellationError, "\(error)") }
        try await eventually("a left the queue") { try await b.childrenIfExists(path).isEmpty }
        await a.close()
        await b.close()
    }
    /// A body that fails at once does not make `leadEveryTerm` take and drop leadership as fast
    /// as the server answers: it waits longer after each failed term (50 ms doubling, at most 5 s).
    @Test(.timeLimit(.minutes(1))) func leadEveryTermBacksOffWhenItsBodyKeepsFailing() async throws {
        struct BodyFailed: Error {}
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let terms = Shared(0)
        let election = LeaderElection(client: client, path: uniqueTestPath(), participantID: "failing")
        let requeueing = Task {
            try await election.leadEveryTerm { _ in
                terms.withLock { $0 += 1 }
                throw BodyFailed()
            }
        }
        try await Task.sleep(for: .seconds(2))
        requeueing.cancel()
        _ = await requeueing.result
        // Pauses of 50, 100, 200, 400, 800 ms fit in 2 s: at most six terms (hundreds without them).
        #expect(terms.value <= 6, "\(terms.value) terms in 2 s")
        await client.close()
    }

    /// The pause after failed terms: 50 ms, doubling, capped at 5 s.
    @Test func thePauseAfterFailedTermsDoublesUpToFiveSeconds() {
        #expect(LeaderElection.pauseAfter(failures: 1) == .milliseconds(50))
        #expect(LeaderElection.pauseAfter(failures: 2) == .milliseconds(100))
        #expect(LeaderElection.pauseAfter(failures: 7) == .milliseconds(3200))
        for failures in 8...200 { #expect(LeaderElection.pauseAfter(failures: failures) == .seconds(5)) }
    }

    /// An invalid election path is refused at once, not campaigned for again and again.
    @Test func leadEveryTermRefusesAnInvalidPath() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        await #expect(throws: ZooKeeperError.self) {
            try await LeaderElection(client: client, path: "no/leading/slash", participantID: "x").leadEveryTerm { _ in }
        }
        await client.close()
    }
    /// Following an election sets one children watch and one watch on the leader's data, and sets
    /// each again only once it fired: followers coming and going do not pile up watches on the
    /// leader's node, nor does reading the leader once.
    @Test(.timeLimit(.minutes(1))) func followingAnElectionDoesNotPileUpWatches() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let leaderClient = try await connectedTestClient(server.connectString)
        let followerClient = try await connectedTestClient(server.connectString)
        let observer = try await connectedTestClient(server.connectString)
        let term = try await LeaderElection(client: leaderClient, path: path, participantID: "leader").campaign()
        var updates = LeaderElection(client: observer, path: path, participantID: "observer").observe().makeAsyncIterator()
        guard case .leader(let info)? = try await updates.next() else { Issue.record("no leader"); return }
        #expect(info.participantID == "leader" && info.epoch == term.epoch)
        for round in 0..<10 {
            let follower = Task { try await LeaderElection(client: followerClient, path: path, participantID: "f\(round)").campaign() }
            try await eventually("follower \(round) queued") { try await observer.childrenIfExists(path).count == 2 }
            follower.cancel()
            _ = await follower.result
            try await eventually("follower \(round) left") { try await observer.childrenIfExists(path).count == 1 }
        }
        for _ in 0..<10 { _ = try await LeaderElection(client: observer, path: path, participantID: "observer").currentLeader() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(observer.registeredWatchCount <= 2, "\(observer.registeredWatchCount) watches after 20 changes of the followers")
        await term.resign()
        await leaderClient.close()
        await followerClient.close()
        await observer.close()
    }
}
