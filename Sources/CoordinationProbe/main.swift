// coordination-probe: a plain client of the library for tests that stop and resume a process
// (SIGSTOP past its session timeout, then SIGCONT). It joins a group as a member, follows the
// group with `members()` and an election with `observe()`, and prints one line per event on
// stdout. It runs until SIGTERM (exit 0); if a stream ends while the client is open, it prints
// `ended <stream>: <error>` and exits 1, so a test sees at once that an expiry ended a stream.
//
//   coordination-probe <connect string> <group> <member id> <election> <session timeout ms>
//
// Lines: `session <state>`, `members <id,id,...>`, `leader <participant id> <payload>` or
// `leader none`, and `stopping: <step>` after SIGTERM.
import Coordination
import Foundation
import Logging
import UnixSignals
import ZooKeeper

let arguments = CommandLine.arguments
guard arguments.count == 6, let timeoutMilliseconds = Int64(arguments[5]) else {
    FileHandle.standardError.write(Data("usage: coordination-probe <connect string> <group> <member id> <election> <session timeout ms>\n".utf8))
    exit(2)
}
let (connect, group, memberID, electionPath) = (arguments[1], arguments[2], arguments[3], arguments[4])

LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
var logger = Logger(label: "coordination-probe")
logger.logLevel = .notice

var configuration = ZooKeeperClient.Configuration()
configuration.sessionTimeout = .milliseconds(timeoutMilliseconds)
configuration.logger = logger
let client = try ZooKeeperClient(connectString: connect, configuration: configuration)
try await client.connect()

/// One line on stdout, written at once (a test reads it while the process runs).
@Sendable func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let membership = MembershipWatcher(client: client, group: group)
try await membership.join(memberID: memberID)
let election = LeaderElection(client: client, path: electionPath, participantID: memberID)

let terminations = await UnixSignalsSequence(trapping: .sigterm)

/// Runs a stream to its end; an end before close() is a failure of the library.
func follow(_ name: String, _ body: @escaping @Sendable () async throws -> Void) -> Task<Void, Never> {
    Task {
        do {
            try await body()
            say("ended \(name): finished")
        } catch {
            say("ended \(name): \(error)")
        }
        if client.state != .closed { exit(1) }
    }
}

let streams = [
    follow("session") {
        for await state in client.sessionEvents { say("session \(state)") }
    },
    follow("members") {
        for try await members in membership.members() { say("members \(members.keys.sorted().joined(separator: ","))") }
    },
    follow("observe") {
        for try await leader in election.observe() {
            switch leader {
            case .leader(let info): say("leader \(info.participantID) \(String(decoding: info.payload, as: UTF8.self))")
            case .vacant: say("leader none")
            }
        }
    },
]

// Each step of the shutdown says when it is done, so that a test whose probe does not exit shows
// where it stopped.
for await _ in terminations { break }
try? await membership.leave()
say("stopping: left")
await client.close()
say("stopping: closed")
for (name, stream) in zip(["session", "members", "observe"], streams) {
    await stream.value
    say("stopping: \(name) stream done")
}
exit(0)
