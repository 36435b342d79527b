import Foundation
import Synchronization
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import StardogReplicated

/// `replicated` processes on a real three-server ZooKeeper ensemble: the behaviour Stardog's
/// cluster documents (§3 of the reference), with faults injected for real.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ClusterTests {
    @Test func threeNodesHaveOneCoordinatorAndEveryAcknowledgedWriteIsOnAll() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3)
            try await cluster.startAll()

            // Roles: one coordinator (the first node: it formed the cluster), two participants.
            #expect(await cluster.coordinators().map(\.index) == [1], "\(cluster.logs())")
            let status = try await nodes[2].request(.GET, "/admin/cluster/status")
            struct Status: Decodable {
                struct Node: Decodable { var address: String; var role: String; var type: String }
                var nodes: [Node]
            }
            let roles = try JSONDecoder().decode(Status.self, from: Data(status.body.utf8)).nodes
            #expect(roles.map(\.role) == ["COORDINATOR", "PARTICIPANT", "PARTICIPANT"])
            #expect(roles.first?.address == nodes[0].address)
            #expect(Set(roles.map(\.address)) == Set(nodes.map(\.address)))
            #expect(try await cluster.members(via: nodes[1]).sorted() == nodes.map(\.address).sorted())
            let info = try await runCLI(["cluster", "info", "--server", "http://\(nodes[1].address)"])
            #expect(info.output == "Coordinator:\n    \(nodes[0].address)\nNodes:\n" + nodes[1...].map { "    \($0.address)\n" }.sorted().joined(), "\(info)")

            // A database created through a participant exists everywhere.
            #expect(try await nodes[1].request(.PUT, "/admin/databases/db").status == 201)
            for node in nodes { #expect(try await node.request(.GET, "/admin/databases").body == #"{"databases":["db"]}"#) }

            // A transaction through each node: once acknowledged, it is on every node.
            var expected: Set<String> = []
            for (index, node) in nodes.enumerated() {
                let tx = try await node.request(.POST, "/db/transaction/begin")
                #expect(tx.status == 200)
                #expect(try await node.request(.POST, "/db/\(tx.body)/add", body: triple("a\(index)") + "\n" + triple("b\(index)")).status == 200)
                #expect(try await node.request(.POST, "/db/\(tx.body)/remove", body: triple("b\(index)")).status == 200)
                let commit = try await node.request(.POST, "/db/transaction/commit/\(tx.body)")
                #expect(commit.status == 200, "\(commit.body)")
                expected.insert(triple("a\(index)"))
                for reader in nodes { #expect(await reader.triples() == expected, "node \(reader.index) after a commit through node \(node.index)") }
            }
            #expect(try await nodes[2].request(.GET, "/db/size").body == "3")
            let bySubject = try await nodes[0].request(.GET, "/db/triples?s=%3Curn:test:sa1%3E")
            #expect(bySubject.body == triple("a1") + "\n")

            // Bad input: a clear 4xx, and nothing applied anywhere.
            let malformed = try await nodes[1].add(triple("c") + "\nthis is not a triple")
            #expect(malformed.status == 400 && malformed.body.contains("MalformedRDF") && malformed.body.contains("line 2"), "\(malformed.body)")
            func refusal(_ reply: ReplicatedTestNode.Reply) -> String {
                "\(reply.status) " + ((try? JSONDecoder().decode(ErrorBody.self, from: Data(reply.body.utf8)).code) ?? "no error body")
            }
            #expect(refusal(try await nodes[0].add(triple("c"), to: "nope")) == "404 UnknownDatabase")
            #expect(refusal(try await nodes[0].request(.POST, "/db/not-a-tx/add", body: triple("c"))) == "404 UnknownTransaction")
            #expect(refusal(try await nodes[0].request(.POST, "/db/transaction/commit/not-a-tx")) == "404 UnknownTransaction")
            #expect(refusal(try await nodes[0].request(.PUT, "/admin/databases/db")) == "409 DatabaseExists")
            #expect(refusal(try await nodes[0].request(.PUT, "/admin/databases/9lives")) == "400 InvalidDatabaseName")
            #expect(refusal(try await nodes[0].request(.DELETE, "/admin/databases/nope")) == "404 UnknownDatabase")
            let huge = String(repeating: triple("x") + "\n", count: (StardogHTTP.maxBody / triple("x").utf8.count) + 10)
            #expect(refusal(try await nodes[2].add(huge)) == "413 BodyTooLarge")
            // A body within the limit whose triples grow past it written out (a control character
            // in a literal takes six bytes): refused before any round, so no member is expelled
            // for a prepare larger than members accept.
            let growing = "<urn:test:sctl> <urn:test:p> \"" + String(repeating: "\u{01}", count: 3 << 20) + "\" .\n"
            #expect(refusal(try await nodes[0].add(growing)) == "413 BodyTooLarge")
            #expect(refusal(try await nodes[1].add(growing)) == "413 BodyTooLarge")
            #expect(try await cluster.members(via: nodes[0]).count == 3, "nobody was expelled")
            #expect(try await nodes[0].request(.PUT, "/admin/databases/big").status == 201)
            #expect(try await nodes[1].request(.DELETE, "/admin/databases/big").status == 200)
            for node in nodes { #expect(refusal(try await node.request(.GET, "/big/size")) == "404 UnknownDatabase") }
            // CRLF line endings are N-Triples too.
            #expect(try await nodes[0].add(triple("crlf1") + "\r\n" + triple("crlf2") + "\r\n", to: "db").status == 200)
            #expect(try await nodes[0].request(.POST, "/db/remove", body: triple("crlf1") + "\r\n" + triple("crlf2")).status == 200)
            let rolledBack = try await nodes[2].request(.POST, "/db/transaction/begin").body
            #expect(try await nodes[2].request(.POST, "/db/\(rolledBack)/add", body: triple("d")).status == 200)
            #expect(refusal(try await nodes[1].request(.POST, "/db/\(rolledBack)/add", body: triple("d"))) == "404 UnknownTransaction")
            #expect(try await nodes[2].request(.POST, "/db/transaction/rollback/\(rolledBack)").status == 200)
            #expect(try await nodes[2].request(.POST, "/db/transaction/commit/\(rolledBack)").status == 404)
            for node in nodes { #expect(await node.triples() == expected) }

            // Read-only mode: every node rejects writes, reads go on.
            #expect(try await nodes[2].request(.PUT, "/admin/cluster/readonly").status == 200)
            for node in nodes {
                let refused = try await node.add(triple("ro"))
                #expect(refused.status == 403 && refused.body.contains("ReadOnly"), "\(refused.body)")
                #expect(await node.triples() == expected)
            }
            #expect(try await nodes[0].request(.DELETE, "/admin/cluster/readonly").status == 200)
            #expect(try await nodes[1].add(triple("rw")).status == 200)

            // The znodes carry the digest ACL: without the credentials nothing can be changed.
            let stranger = try await cluster.zooKeeper(authenticated: false)
            let layout = cluster.layout
            #expect(try await stranger.exists(layout.database("db")) != nil)
            await #expect(throws: ZooKeeperError.self) { try await stranger.setData(layout.database("db"), data: Array("{}".utf8)) }
            await #expect(throws: ZooKeeperError.self) { try await stranger.create(layout.member("intruder"), mode: .ephemeral) }
            await #expect(throws: ZooKeeperError.self) { try await stranger.delete(layout.member(nodes[1].address)) }
            await #expect(throws: ZooKeeperError.self) { try await stranger.create(layout.readOnly) }
            await stranger.close()
            let zkInfo = try await runCLI(["zk", "info", "--config", nodes[0].configPath])
            #expect(zkInfo.output.contains("db: 6 transactions"), "\(zkInfo)")

            // `cluster stop` shuts every node down cleanly.
            #expect(try await runCLI(["cluster", "stop", "--server", "http://\(nodes[2].address)"]).status == 0)
            for node in nodes { #expect(await node.waitForExit() == 0, "node \(node.index)") }
        }
    }

    @Test func aKilledParticipantIsExpelledByTheNextCommitThenSyncsAndRejoins() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3)
            try await cluster.startAll()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)
            #expect(try await nodes[1].add(triple("before")).status == 200)

            await nodes[2].kill9()
            let commit = try await nodes[1].add(triple("while-down"))
            #expect(commit.status == 200, "\(commit.body)\n\(cluster.logs())")
            #expect(try await cluster.members(via: nodes[0]).sorted() == [nodes[0].address, nodes[1].address].sorted())
            #expect(nodes[0].logLines(containing: "expelling a node").contains { $0.contains(nodes[2].address) })
            for node in nodes[0...1] { #expect(await node.triples() == [triple("before"), triple("while-down")]) }

            try nodes[2].start()
            try await nodes[2].waitUntilHealthy()
            #expect(await nodes[2].triples() == [triple("before"), triple("while-down")])
            #expect(nodes[2].logLines(containing: "copied a database").count >= 1)
            #expect(try await cluster.members(via: nodes[2]).count == 3)
            #expect(try await nodes[2].add(triple("after")).status == 200)
            for node in nodes { #expect(await node.triples()?.count == 3) }
        }
    }

    /// The survivors hold votes of the killed coordinator's round. The new coordinator's first
    /// prepare (a later fencing token) finds them undecided, on itself and on the other survivor:
    /// each decides its vote from ZooKeeper's record first (not committed), then votes. (The
    /// commit timeout is long, so that no vote is old enough for the decider of stale votes.)
    @Test func aCoordinatorKilledBeforeTheRecordLeavesTheOutcomeUnknownToTheForwarderAndARetrySucceeds() async throws {
        try await withCluster { cluster in
            // Node 1 forms the cluster, so it coordinates; it pauses between the votes and the record.
            let nodes = try cluster.addNodes(3)
            nodes[0].settings["stardog.test.pause.before.record"] = "4s"
            for node in nodes { node.settings["pack.node.commit.timeout"] = "15s" }
            try await cluster.startAll()
            #expect(await cluster.coordinators().map(\.index) == [1])
            #expect(try await nodes[1].request(.PUT, "/admin/databases/db").status == 201)

            async let attempt = nodes[1].add(triple("second"))
            try await eventually("the coordinator paused after the votes") { !nodes[0].logLines(containing: "pausing before the record").isEmpty }
            await nodes[0].kill9()
            // The node that forwarded it cannot know whether the coordinator recorded it: here it had not.
            let unknown = try await attempt
            #expect(unknown.status == 503 && unknown.body.contains("OutcomeUnknown"), "\(unknown.body)")
            for node in nodes[1...] { #expect(await node.triples() == []) }

            // A retry succeeds once a new coordinator is elected among the survivors.
            try await eventually("a retry succeeds", timeout: .seconds(30)) { try await nodes[1].add(triple("second")).status == 200 }
            #expect(await cluster.coordinators().map(\.index).count == 1)
            #expect(await cluster.coordinators().allSatisfy { $0.index != 1 })
            for node in nodes[1...] {
                #expect(await node.triples() == [triple("second")])
                let decided = node.logLines(containing: "decided an undecided vote", "a later coordinator's prepare came")
                #expect(decided.count == 1 && decided.allSatisfy { $0.contains("committed=false") }, "\(node.log.suffix(3000))")
            }

            // The old coordinator decides its undecided vote from ZooKeeper (not committed), resyncs, rejoins.
            nodes[0].settings["stardog.test.pause.before.record"] = nil
            try nodes[0].start()
            try await nodes[0].waitUntilHealthy()
            #expect(nodes[0].logLines(containing: "decided an undecided vote").contains { $0.contains("committed=false") }, "\(nodes[0].log.suffix(3000))")
            for node in nodes { #expect(await node.triples() == [triple("second")]) }
        }
    }

    /// Group commit under a coordinator failure: clients commit at once through every node, so
    /// their transactions share rounds; the coordinator is killed between the votes and the
    /// record of a round of many. Every transaction is either acknowledged and then on every
    /// member that stays, or reported failed or of unknown outcome: none is acknowledged and lost.
    @Test func aCoordinatorKilledMidRoundLosesNoAcknowledgedTransaction() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3)
            nodes[0].settings["stardog.test.pause.before.record"] = "3s"
            try await cluster.startAll()
            #expect(await cluster.coordinators().map(\.index) == [1])
            #expect(try await nodes[1].request(.PUT, "/admin/databases/db").status == 201)

            let clients = 24
            let outcomes = Task {
                await withTaskGroup(of: (Int, Result<ReplicatedTestNode.Reply, any Error>).self) { group in
                    for client in 0..<clients {
                        group.addTask {
                            do { return (client, .success(try await nodes[client % 3].add(triple("c\(client)")))) } catch { return (client, .failure(error)) }
                        }
                    }
                    return await group.reduce(into: [Int: Result<ReplicatedTestNode.Reply, any Error>]()) { $0[$1.0] = $1.1 }
                }
            }
            // The first round may carry only the first arrivals; the next one carries the rest.
            func pausedRoundSizes() -> [Int] {
                nodes[0].logLines(containing: "pausing before the record").compactMap { line in
                    line.range(of: "replicated.operations=").flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
                }
            }
            try await eventually("a round of several transactions paused before its record") { pausedRoundSizes().contains { $0 > 1 } }
            await nodes[0].kill9()
            let results = await outcomes.value
            #expect(results.count == clients)

            var acknowledged: Set<String> = []
            for (client, result) in results {
                switch result {
                case .success(let reply) where reply.status == 200:
                    acknowledged.insert(triple("c\(client)"))
                case .success(let reply):
                    #expect(
                        reply.status == 503 && (reply.body.contains("OutcomeUnknown") || reply.body.contains("TransactionAborted")),
                        "client \(client): \(reply.status) \(reply.body)")
                case .failure:
                    #expect(client % 3 == 0, "only requests to the killed node go unanswered")
                }
            }
            #expect(acknowledged.count < clients, "the round killed mid-way was acknowledged")

            // A new coordinator commits again; the survivors decide the killed round's votes from
            // ZooKeeper's record (nothing was recorded) and agree.
            try await eventually("a commit succeeds after the failover", timeout: .seconds(30)) { try await nodes[1].add(triple("after")).status == 200 }
            let survivors = [await nodes[1].triples(), await nodes[2].triples()]
            #expect(survivors[0] != nil && survivors[0] == survivors[1])
            for triples in survivors {
                #expect(acknowledged.isSubset(of: triples ?? []), "an acknowledged transaction is missing: \(acknowledged.subtracting(triples ?? []))")
                #expect(triples?.contains(triple("after")) == true)
            }
        }
    }

    @Test func aPausedParticipantIsExpelledAndServesNothingStaleWhenItResumes() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3)
            try await cluster.startAll()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)
            #expect(try await nodes[0].add(triple("before")).status == 200)

            nodes[2].pause()
            let commit = try await nodes[1].add(triple("while-paused"))
            #expect(commit.status == 200, "\(commit.body)")
            #expect(try await cluster.members(via: nodes[0]).count == 2)
            nodes[2].resume()

            // From the moment it resumes, node 3 answers only once it has what the cluster acknowledged.
            let deadline = ContinuousClock.now + .seconds(3)
            var refused = 0
            while ContinuousClock.now < deadline {
                let reply = try await nodes[2].request(.GET, "/db/triples", timeout: .seconds(5))
                if reply.status == 200 {
                    #expect(reply.body.contains(triple("while-paused")), "node 3 served a stale read: \(reply.body)")
                } else {
                    #expect(reply.status == 503 && reply.body.contains("NotInCluster"), "\(reply)")
                    refused += 1
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(refused > 0, "node 3 was never seen refusing: it rejoined before any read, or never left")
            try await nodes[2].waitUntilHealthy()
            for node in nodes { #expect(await node.triples() == [triple("before"), triple("while-paused")]) }
        }
    }

    @Test func aJoinUnderContinuousWritesSyncsWithoutTheLockFirstAndUnderItIfStillBehind() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3, settings: ["pack.node.join.unlocked.attempts": "2"])
            try nodes[0].start()
            try await nodes[0].waitUntilHealthy()
            try nodes[1].start()
            try await nodes[1].waitUntilHealthy()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)

            let writer = ContinuousWriter(nodes: [nodes[0], nodes[1]])
            writer.start()
            try await eventually("writes flow") { writer.acknowledged.count > 3 }
            nodes[2].settings["stardog.test.sync.delay"] = "600ms"
            try nodes[2].start()
            try await nodes[2].waitUntilHealthy()
            let acknowledged = await writer.stop()

            // It copies without the lock first, comparing again at once after each copy; if it has
            // not caught up after the two unlocked attempts, the third copies under the lock.
            let unlocked = nodes[2].logLines(containing: "syncing without the cluster lock")
            let locked = nodes[2].logLines(containing: "syncing while holding the cluster lock")
            #expect((1...2).contains(unlocked.count), "\(nodes[2].log.suffix(4000))")
            #expect(locked.count <= 1)
            if let first = locked.first {
                #expect(unlocked.count == 2 && first.contains("join attempt 3"), "\(nodes[2].log.suffix(4000))")
            }
            // (The last write may still be committing: the writer stopped waiting for it.)
            try await eventually("the members agree") {
                let views = await [nodes[0].triples(), nodes[1].triples(), nodes[2].triples()]
                return views[0] != nil && views.allSatisfy { $0 == views[0] }
            }
            for node in nodes {
                let seen = try #require(await node.triples())
                #expect(acknowledged.isSubset(of: seen), "node \(node.index) lacks acknowledged writes")
            }
        }
    }

    @Test func aNodeThatNeverLocksKeepsSyncingWithoutTheLockUntilWritesPause() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3, settings: ["pack.node.join.lock.never": "true", "pack.node.join.unlocked.attempts": "1"])
            try nodes[0].start()
            try await nodes[0].waitUntilHealthy()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)

            let writer = ContinuousWriter(nodes: [nodes[0]])
            writer.start()
            try await eventually("writes flow") { writer.acknowledged.count > 3 }
            nodes[1].settings["stardog.test.sync.delay"] = "600ms"
            try nodes[1].start()
            try await eventually("three unlocked attempts", timeout: .seconds(30)) {
                nodes[1].logLines(containing: "syncing without the cluster lock").count >= 3
            }
            #expect(await !nodes[1].isHealthy)
            let acknowledged = await writer.stop()
            try await nodes[1].waitUntilHealthy()
            #expect(nodes[1].logLines(containing: "holding the cluster lock").isEmpty)
            #expect(await nodes[1].triples().map { acknowledged.isSubset(of: $0) } == true)
            try await eventually("the members agree") { await nodes[1].triples() == (await nodes[0].triples()) }
        }
    }

    @Test func aLoneNodeWithStaleStateRefusesToStartUntilZooKeeperIsCleared() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(2)
            try await cluster.startAll()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)
            #expect(try await nodes[0].add(triple("a")).status == 200)
            await nodes[1].stop()
            // A plain stop is clean: it says it stops, nothing else alarming.
            let stopLog = nodes[1].log
            #expect(stopLog.contains("stopped"))
            let alarming = stopLog.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" critical ") || $0.contains("no longer a member") }
            #expect(alarming.isEmpty, "\(alarming)")
            #expect(try await nodes[0].add(triple("b")).status == 200)
            await nodes[0].stop()

            // Node 2 lacks "b" and nobody is alive to copy it from.
            try nodes[1].start()
            let status = await nodes[1].waitForExit()
            #expect(status != nil && status != 0)
            #expect(nodes[1].log.contains("no member is alive") && nodes[1].log.contains("replicated zk clear"), "\(nodes[1].log.suffix(2000))")
            let restartLog = String(nodes[1].log.dropFirst(stopLog.count))
            #expect(restartLog.components(separatedBy: "no member is alive").count - 1 == 1, "the refusal is said once: \(restartLog.suffix(3000))")

            let clear = try await runCLI(["zk", "clear", "--config", nodes[1].configPath])
            #expect(clear.status == 0, "\(clear)")
            try nodes[1].start()
            try await nodes[1].waitUntilHealthy()
            #expect(await nodes[1].triples() == [triple("a")])
            #expect(nodes[1].logLines(containing: "formed a new cluster").count == 1)
            let refused = try await runCLI(["zk", "clear", "--config", nodes[1].configPath])
            #expect(refused.status.map { $0 != 0 } == true && refused.output.contains("alive"), "\(refused)")
        }
    }

    @Test func aFullClusterRestartKeepsEveryAcknowledgedTransaction() async throws {
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3)
            try await cluster.startAll()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)
            var acknowledged: Set<String> = []
            for index in 0..<20 where try await nodes[index % 3].add(triple("t\(index)")).status == 200 {
                acknowledged.insert(triple("t\(index)"))
            }
            #expect(acknowledged.count == 20)
            for node in nodes { await node.kill9() }
            for node in nodes { try node.start() }
            for node in nodes { try await node.waitUntilHealthy() }
            for node in nodes { #expect(await node.triples() == acknowledged, "node \(node.index)") }
            try await eventually("one coordinator", timeout: .seconds(30)) { await cluster.coordinators().count == 1 }
            try await eventually("writes work again", timeout: .seconds(30)) { try await nodes[1].add(triple("again")).status == 200 }
        }
    }
    /// Concurrent clients commit uniquely identifiable triples while nodes are killed, paused,
    /// stopped and restarted (one fault at a time, from a seeded schedule; set
    /// `REPLICATED_CHAOS_SEED` to replay one). At the end every acknowledged triple is on every
    /// member, and the members are identical.
    @Test func randomFaultsNeverLoseAnAcknowledgedTransactionNorSplitTheMembers() async throws {
        let seed = ProcessInfo.processInfo.environment["REPLICATED_CHAOS_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        try await withCluster { cluster in
            let nodes = try cluster.addNodes(3, settings: ["pack.node.join.retry.count": "300"])
            try await cluster.startAll()
            #expect(try await nodes[0].request(.PUT, "/admin/databases/db").status == 201)
            var random = SeededRandomNumberGenerator(seed: seed)
            let writers = (1...3).map { ContinuousWriter(nodes: nodes, name: "w\($0)-") }
            for (index, writer) in writers.enumerated() { writer.start(pause: .milliseconds(10)) { ($0 + index) % 3 } }
            var schedule: [String] = []
            for _ in 0..<8 {
                let node = nodes.randomElement(using: &random)!
                let outage = Duration.milliseconds(Int.random(in: 300...2500, using: &random))
                switch Int.random(in: 0..<3, using: &random) {
                case 0:
                    schedule.append("kill -9 node \(node.index), restart after \(outage)")
                    await node.kill9()
                    try await Task.sleep(for: outage)
                    try node.start()
                case 1:
                    schedule.append("SIGSTOP node \(node.index) for \(outage)")
                    node.pause()
                    try await Task.sleep(for: outage)
                    node.resume()
                default:
                    schedule.append("stop node \(node.index), restart after \(outage)")
                    await node.stop()
                    try await Task.sleep(for: outage)
                    try node.start()
                }
                try await Task.sleep(for: .milliseconds(Int.random(in: 500...2000, using: &random)))
            }
            var acknowledged: Set<String> = []
            for writer in writers { acknowledged.formUnion(await writer.stop()) }
            let context = "seed \(seed): \(schedule.joined(separator: "; "))"
            for node in nodes where !node.isRunning { try node.start() }
            for node in nodes { try await node.waitUntilHealthy(timeout: .seconds(90)) }
            try await eventually("the members agree (\(context))") {
                let views = await [nodes[0].triples(), nodes[1].triples(), nodes[2].triples()]
                return views[0] != nil && views.allSatisfy { $0 == views[0] }
            }
            #expect(acknowledged.count > 20, "\(context)")
            for node in nodes {
                let seen = try #require(await node.triples())
                #expect(acknowledged.subtracting(seen).isEmpty, "node \(node.index) lacks \(acknowledged.subtracting(seen).sorted().prefix(5)) (\(context))")
            }
        }
    }
}

/// Runs `body` on a new cluster (named after the test) and kills its processes afterwards.
func withCluster(name: String = #function, _ body: (ReplicatedTestCluster) async throws -> Void) async throws {
    let cluster = try await ReplicatedTestCluster.make(name: name)
    try await cluster.run { try await body(cluster) }
}

/// Commits uniquely identifiable triples, one after another, through the given nodes in turn,
/// and remembers those that were acknowledged.
final class ContinuousWriter: @unchecked Sendable {
    let nodes: [ReplicatedTestNode]
    private let state = Mutex<(acknowledged: Set<String>, task: Task<Void, Never>?)>(([], nil))
    let name: String

    init(nodes: [ReplicatedTestNode], name: String = "w") {
        self.nodes = nodes
        self.name = name
    }

    var acknowledged: Set<String> { state.withLock { $0.acknowledged } }

    func start(pause: Duration = .milliseconds(30), choose: (@Sendable (Int) -> Int)? = nil) {
        let task = Task {
            var count = 0
            while !Task.isCancelled {
                count += 1
                let value = "\(name)\(count)"
                let node = nodes[choose?(count) ?? (count % nodes.count)]
                if let reply = try? await node.add(triple(value), to: "db"), reply.status == 200 {
                    state.withLock { _ = $0.acknowledged.insert(triple(value)) }
                }
                try? await Task.sleep(for: pause)
            }
        }
        state.withLock { $0.task = task }
    }

    /// Stops writing; the acknowledged triples.
    func stop() async -> Set<String> {
        let task = state.withLock { $0.task }
        task?.cancel()
        await task?.value
        return acknowledged
    }
}

/// Runs the `replicated` executable (an admin command) to the end; its status and its output.
func runCLI(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
    let child = ChildProcess(logPath: NSTemporaryDirectory() + "replicated-cli-" + UUID().uuidString + ".log")
    defer { try? FileManager.default.removeItem(atPath: child.logPath) }
    try child.start(executable: ChildProcess.builtExecutable(named: "replicated"), arguments: arguments)
    let status = await child.waitForExit(timeout: .seconds(60))
    return (status, child.log)
}
