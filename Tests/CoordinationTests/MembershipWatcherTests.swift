import Testing
import ZooKeeper
import ZooKeeperTesting
@testable import Coordination

@Suite struct MembershipWatcherTests {
    @Test func watchersSeeJoinsAndLeavesInOrder() async throws {
        let server = try await ZooKeeperServer.shared()
        let group = uniqueTestPath()
        let watcherClient = try await connectedTestClient(server.connectString)
        var snapshots = MembershipWatcher(client: watcherClient, group: group).members().makeAsyncIterator()
        #expect(try await snapshots.next() == [:])
        var members: [MembershipWatcher] = []
        var clients: [ZooKeeperClient] = []
        for index in 0..<3 {
            let client = try await connectedTestClient(server.connectString)
            let member = MembershipWatcher(client: client, group: group)
            try await member.join(memberID: "m\(index)", payload: Array("addr-\(index)".utf8))
            members.append(member)
            clients.append(client)
            let snapshot = try await snapshots.next()
            #expect(snapshot?.keys.sorted() == (0...index).map { "m\($0)" })
            #expect(snapshot?["m\(index)"] == Array("addr-\(index)".utf8))
        }
        try await members[1].leave()
        #expect(try await snapshots.next()?.keys.sorted() == ["m0", "m2"])
        try await members[0].updatePayload(Array("moved".utf8))
        let moved = try await snapshots.next()
        #expect(moved?.keys.sorted() == ["m0", "m2"] && moved?["m0"] == Array("moved".utf8), "a payload change is a new snapshot")
        await clients[2].close()  // a crash-like exit: the session ends, the member goes
        #expect(try await snapshots.next()?.keys.sorted() == ["m0"])
        for client in clients { await client.close() }
        await watcherClient.close()
    }

    @Test func aDuplicateMemberIDHeldByAnotherSessionIsAnError() async throws {
        let server = try await ZooKeeperServer.shared()
        let group = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        try await MembershipWatcher(client: a, group: group).join(memberID: "same")
        do {
            try await MembershipWatcher(client: b, group: group).join(memberID: "same")
            Issue.record("joined with a duplicate id")
        } catch let error as CoordinationError {
            #expect(error.code == .duplicateMember)
        }
        // Joining again from the owning session adopts its own node.
        try await MembershipWatcher(client: a, group: group).join(memberID: "same", payload: Array("again".utf8))
        #expect(try await a.getData("\(group)/same").string == "again")
        await a.close()
        await b.close()
    }

    /// After expiry the member is published again with its latest payload; after leave() never.
    /// A restarted process finds its predecessor's node (another session) until that session
    /// ends: with waitingForOtherSession the join waits for the node to go and then takes it.
    @Test func aJoinCanWaitForAnotherSessionsNodeToGo() async throws {
        let server = try await ZooKeeperServer.shared()
        let group = uniqueTestPath()
        let old = try await connectedTestClient(server.connectString)
        let new = try await connectedTestClient(server.connectString)
        try await MembershipWatcher(client: old, group: group).join(memberID: "same")
        let joining = Task { try await MembershipWatcher(client: new, group: group).join(memberID: "same", waitingForOtherSession: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(300))  // let the join find the node (it waits either way)
        await old.close()  // the predecessor's session ends
        try await joining.value
        #expect(try await new.exists(group + "/same")?.ephemeralOwner == new.sessionCredentials?.sessionID)
        // A deadline that passes while the other session lives is still a duplicate.
        let third = try await connectedTestClient(server.connectString)
        await #expect(throws: CoordinationError.self) {
            try await MembershipWatcher(client: third, group: group).join(memberID: "same", waitingForOtherSession: .milliseconds(300))
        }
        await third.close()
        await new.close()
    }

    @Test func republishedAfterExpiryWithTheLatestPayloadButNeverAfterLeave() async throws {
        let server = try await ZooKeeperServer.shared()
        let group = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let observer = try await connectedTestClient(server.connectString)
        let member = MembershipWatcher(client: client, group: group)
        try await member.join(memberID: "node-1", payload: Array("v1".utf8))
        try await member.updatePayload(Array("v2".utf8))
        try await client.expireSessionForTesting()
        try await eventually("republished on the new session") {
            guard let stat = try await observer.exists("\(group)/node-1") else { return false }
            return stat.ephemeralOwner == client.sessionCredentials?.sessionID
        }
        #expect(try await observer.getData("\(group)/node-1").string == "v2")

        try await member.leave()
        #expect(try await observer.exists("\(group)/node-1") == nil)
        try await client.expireSessionForTesting()
        try await client.waitUntilConnected()
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await observer.exists("\(group)/node-1") == nil, "a member that left is not resurrected")
        await client.close()
        await observer.close()
    }

    @Test func sequentialMembersAreNamedByTheServerAndRepublishedUnderANewNameAfterExpiry() async throws {
        let server = try await ZooKeeperServer.shared()
        let group = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let observer = try await connectedTestClient(server.connectString)
        // Two members of one session in one group, as a Sensei node publishes one per partition.
        let first = MembershipWatcher(client: client, group: group)
        let second = MembershipWatcher(client: client, group: group)
        let firstName = try await first.join(sequentialPrefix: "member_", payload: Array("shard-0".utf8))
        let secondName = try await second.join(sequentialPrefix: "member_", payload: Array("shard-1".utf8))
        #expect(firstName.hasPrefix("member_") && firstName.count == "member_".count + 10, "\(firstName)")
        #expect(firstName != secondName)
        #expect(first.memberID == firstName)
        let stat = try #require(try await observer.exists("\(group)/\(firstName)"))
        #expect(stat.ephemeralOwner == client.sessionCredentials?.sessionID)
        try await first.updatePayload(Array("shard-0b".utf8))

        for round in 1...3 {
            try await client.expireSessionForTesting()
            try await eventually("round \(round): both republished on the new session, once each") {
                let names = try await observer.getChildren(group).names
                guard names.count == 2, let session = client.sessionCredentials?.sessionID else { return false }
                for name in names where try await observer.exists("\(group)/\(name)")?.ephemeralOwner != session { return false }
                return true
            }
            let republished = try #require(first.memberID)
            #expect(republished != firstName, "a new sequence number on the new session")
            #expect(try await observer.getData("\(group)/\(republished)").string == "shard-0b", "the latest payload")
        }

        try await first.leave()
        #expect(try await observer.getChildren(group).names == [try #require(second.memberID)])
        #expect(first.memberID == nil)
        try await client.expireSessionForTesting()
        try await eventually("the other member is back") { try await observer.getChildren(group).names.count == 1 }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await observer.getChildren(group).names.count == 1, "a member that left is not resurrected")
        await client.close()
        await observer.close()
    }

    @Test func awaitStableReturnsOnceTheGroupIsQuiet() async throws {
        let server = try await ZooKeeperServer.shared()
        let group = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let member = MembershipWatcher(client: client, group: group)
        try await member.join(memberID: "a")
        let joiners = ["b", "c"]
        let joiner = Task {
            var joined: [ContinuousClock.Instant] = []
            for name in joiners {
                // Late in each quiet period, so that only a wait the change postponed sees it.
                try await Task.sleep(for: .milliseconds(700))
                try await MembershipWatcher(client: client, group: group).join(memberID: name)
                joined.append(.now)
            }
            return joined
        }
        let quietPeriod = Duration.seconds(2)
        let start = ContinuousClock.now
        let stable = try await member.awaitStable(quietPeriod: quietPeriod)
        let answered = ContinuousClock.now
        let joined = try await joiner.value
        let members = stable.keys.sorted()
        #expect(answered - start >= quietPeriod)
        // The answer is what the group was at one moment: "a", then "b" too, then "c".
        #expect([["a"], ["a", "b"], ["a", "b", "c"]].contains(members))
        // A join that came within half the quiet period of the change before it (of the call, for
        // the first) postponed the answer, so it is in it; and an answer with a join in it came a
        // quiet period after that join was seen (half of one after the joiner heard it, leaving
        // room for the joiner's own wake-up). On a loaded machine a join can take longer than the
        // quiet period: the group was quiet before it, and the answer may come without it.
        var previous = start
        for (name, at) in zip(joiners, joined) {
            guard at - previous < quietPeriod / 2 else { break }
            #expect(members.contains(name), "\(name) joined \(at - previous) after the change before it")
            previous = at
        }
        for (name, at) in zip(joiners, joined) where members.contains(name) {
            #expect(answered - at >= quietPeriod / 2, "answered \(answered - at) after \(name) joined")
        }
        await client.close()
    }

    /// A member id is one node name: anything else is refused before a node is written (a
    /// member "a/b" used to leave a persistent "a" that later showed up as a phantom member).
    @Test func aMemberIDThatIsNotOneNodeNameIsRefused() async throws {
        let server = try await ZooKeeperServer.shared()
        let group = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let watcher = MembershipWatcher(client: client, group: group)
        for bad in ["a/b", "", "..", ".", "/a", "x\u{0}y"] {
            await #expect {
                try await watcher.join(memberID: bad)
            } throws: { error in
                guard let error = error as? CoordinationError else { return false }
                return error.code == .invalidArgument && error.message.contains("member id")
            }
        }
        await #expect(throws: CoordinationError.self) { try await watcher.join(sequentialPrefix: "member/") }
        #expect(try await client.exists(group) == nil, "nothing was written")
        try await watcher.join(memberID: "a.b-c_1")
        #expect(try await client.childrenIfExists(group) == ["a.b-c_1"])
        try await watcher.leave()
        await client.close()
    }
    /// A join waiting for a connection that does not come does not hold up `leave()`: the leave
    /// returns while still disconnected, and the join ends saying the watcher left.
    @Test(.timeLimit(.minutes(1))) func leaveDoesNotWaitForAJoinWaitingForTheConnection() async throws {
        let server = try await ZooKeeperServer.shared()
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(10))
        proxy.cut()
        try await eventually("disconnected") { !client.state.isConnected }
        let member = MembershipWatcher(client: client, group: uniqueTestPath())
        let joining = Task { try await member.join(memberID: "m-1") }
        try await Task.sleep(for: .milliseconds(300))
        try await member.leave()
        #expect(!client.state.isConnected, "left while still disconnected")
        await #expect {
            try await joining.value
        } throws: { ($0 as? CoordinationError)?.code == .closed }
        proxy.restore()
        await client.close()
        await proxy.shutdown()
    }
    /// Leaving is cleanup: called from a task that is already cancelled (a version's removal run
    /// by one of its own tasks), the member's node is still deleted.
    @Test(.timeLimit(.minutes(1))) func leavingFromACancelledTaskStillDeletesTheNode() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let observer = try await connectedTestClient(server.connectString)
        let group = uniqueTestPath()
        let member = MembershipWatcher(client: client, group: group)
        try await member.join(memberID: "m-1")
        #expect(try await observer.childrenIfExists(group) == ["m-1"])
        let leaving = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await member.leave()
        }
        _ = await leaving.result
        try await eventually("the member's node is gone", timeout: .seconds(5)) { try await observer.childrenIfExists(group).isEmpty }
        await client.close()
        await observer.close()
    }

    /// A member leaves while disconnected (its delete is retried once the connection is back),
    /// and a new watcher on the same client joins under the same id meanwhile: the join waits
    /// for that delete to be done, so the new member stays.
    @Test(.timeLimit(.minutes(1))) func aRetriedLeaveSparesTheSameIDJoiningAgain() async throws {
        try await withProxiedClient { proxy, client, observer, group in
            try await MembershipWatcher(client: client, group: group).join(memberID: "m-1") // a member to leave
            let leaving = MembershipWatcher(client: client, group: group)
            try await leaving.join(memberID: "m-2")
            proxy.cut()
            try await eventually("disconnected") { !client.state.isConnected }
            try await leaving.leave()
            let again = MembershipWatcher(client: client, group: group)
            let joining = Task { try await again.join(memberID: "m-2") }
            proxy.restore()
            try await joining.value  // after the retried delete ended
            #expect(try await observer.childrenIfExists(group).sorted() == ["m-1", "m-2"])
        }
    }

    /// A join's create reaches the server but its reply is lost; the member leaves before the
    /// connection is back: once it is, the node that create made is deleted (it is this
    /// session's), so it does not stay in the group for the session's life.
    @Test(.timeLimit(.minutes(2))) func leavingAfterALostCreateReplyDeletesTheNodeItMade() async throws {
        try await withProxiedClient { proxy, client, observer, group in
            try await observer.createPath(group)
            let member = MembershipWatcher(client: client, group: group)
            proxy.dropReplies()
            let joining = Task { try await member.join(memberID: "m-1") }
            try await eventually("the create reached the server", timeout: .seconds(10)) { try await observer.childrenIfExists(group) == ["m-1"] }
            try await eventually("the client gave the connection up", timeout: .seconds(20)) { !client.state.isConnected }
            try await member.leave()
            _ = await joining.result
            proxy.restore()
            try await eventually("the node the lost create made is deleted", timeout: .seconds(20)) { try await observer.childrenIfExists(group).isEmpty }
        }
    }

    /// A sequential member's payload change cut off by a lost connection is written again once
    /// the connection is back, to the same node: the member does not end up with two nodes.
    @Test(.timeLimit(.minutes(1))) func aPayloadChangeAcrossALostConnectionKeepsOneSequentialNode() async throws {
        try await withProxiedClient { proxy, client, observer, group in
            let member = MembershipWatcher(client: client, group: group)
            let name = try await member.join(sequentialPrefix: "member_", payload: Array("first".utf8))
            proxy.cut()
            try await eventually("disconnected") { !client.state.isConnected }
            let updating = Task { try await member.updatePayload(Array("second".utf8)) }
            try await Task.sleep(for: .milliseconds(300))
            proxy.restore()
            try await updating.value
            #expect(try await observer.childrenIfExists(group) == [name])
            #expect(try await observer.getData(group + "/" + name).bytes == Array("second".utf8))
            try await member.leave()
        }
    }

    /// A join waiting (up to five minutes) for another session's node to go does not hold up
    /// `leave()`: the leave returns at once, the join ends saying the watcher left. (Without that,
    /// the leave would wait the five minutes, past the time limit.)
    @Test(.timeLimit(.minutes(1))) func leaveDoesNotWaitForAJoinWaitingForAnotherSessionsNode() async throws {
        let server = try await ZooKeeperServer.shared()
        let holder = try await connectedTestClient(server.connectString)
        let client = try await connectedTestClient(server.connectString)
        let group = uniqueTestPath()
        try await MembershipWatcher(client: holder, group: group).join(memberID: "m-1")
        let member = MembershipWatcher(client: client, group: group)
        let joining = Task { try await member.join(memberID: "m-1", waitingForOtherSession: .seconds(300)) }
        try await Task.sleep(for: .milliseconds(300))
        try await member.leave()
        await #expect {
            try await joining.value
        } throws: { ($0 as? CoordinationError)?.code == .closed }
        #expect(try await holder.childrenIfExists(group) == ["m-1"], "the other session's member stays")
        await holder.close()
        await client.close()
    }
}
