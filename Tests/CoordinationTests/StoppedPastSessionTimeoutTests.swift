import Foundation
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// A process running the recipes is stopped (SIGSTOP) until ZooKeeper expires its session, then
/// continued, again and again: its streams go on and its membership comes back every time.
@Suite(.timeLimit(.minutes(5))) struct StoppedPastSessionTimeoutTests {
    static let rounds = 20

    @Test func aClientFollowingMembersAndALeaderKeepsGoingAcrossTwentyExpiries() async throws {
        let server = try await ZooKeeperServer.shared()
        let observer = try await connectedTestClient(server.connectString)
        let base = uniqueTestPath()
        let group = base + "/group"
        let election = LeaderElection(client: observer, path: base + "/election", participantID: "test")
        let term = try await election.campaign(payload: Array("round-0".utf8))
        let directory = NSTemporaryDirectory() + "coordination-probe-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let probe = ChildProcess(logPath: directory + "/probe.log")
        let binary = ChildProcess.builtExecutable(named: "coordination-probe")
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the coordination-probe executable first (swift build)")
        try probe.start(executable: binary, arguments: [server.connectString, group, "probe", base + "/election", "1000"])
        defer { probe.killAndWait() }

        let member = group + "/probe"
        try await eventually("the probe joined and saw the leader") {
            try await observer.exists(member) != nil && probe.log.contains("leader test round-0\n")
        }
        // The test's own member of the group changes every round: members() must report each.
        var visitor = MembershipWatcher(client: observer, group: group)
        for round in 1...Self.rounds {
            let expired = try await probe.pauseUntilSessionExpires(ephemeral: member, observer: observer)
            try await eventually("round \(round): the probe is a member again, on a new session") {
                guard let stat = try await observer.exists(member) else { return false }
                return stat.ephemeralOwner != 0 && stat.ephemeralOwner != expired
            }
            try await term.proclaim(Array("round-\(round)".utf8))
            try await visitor.leave()
            visitor = MembershipWatcher(client: observer, group: group)
            try await visitor.join(memberID: "visitor-\(round)")
            try await eventually("round \(round): observe() and members() report the changes made after the expiry") {
                let log = probe.log
                return log.contains("leader test round-\(round)\n") && log.contains("members probe,visitor-\(round)\n")
            }
            #expect(probe.isRunning, "round \(round): the probe exited:\n\(probe.log.suffix(2000))")
            #expect(!probe.log.contains("ended "), "round \(round): a stream ended:\n\(probe.log.suffix(2000))")
        }
        let expiries = probe.log.components(separatedBy: "\n").filter { $0.hasPrefix("session expired") }.count
        #expect(expiries >= Self.rounds)

        probe.signal(SIGTERM)
        #expect(await probe.waitForExit(timeout: .seconds(30)) == 0, "\(probe.log.suffix(2000))")
        #expect(try await observer.exists(member) == nil, "leaving deletes the member")
        await term.resign()
        try? await visitor.leave()
        await observer.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
