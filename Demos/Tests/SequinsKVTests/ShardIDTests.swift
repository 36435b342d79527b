import Testing
import ZooKeeper
import ZooKeeperTesting
@testable import SequinsKV

@Suite struct ShardIDTests {
    @Test func smallestFreeShardIDMatchesSequinsWithoutItsDuplicateBug() throws {
        #expect(try ShardID.smallestFree(in: ["2", "4"]) == "1")
        #expect(try ShardID.smallestFree(in: ["1", "3"]) == "2")
        #expect(try ShardID.smallestFree(in: ["1", "2"]) == "3")
        #expect(try ShardID.smallestFree(in: ["1", "4", "5"]) == "2")
        #expect(try ShardID.smallestFree(in: []) == "1")
        #expect(try ShardID.smallestFree(in: ["1", "1", "2"]) == "3")  // sequins says "2", which is taken
        #expect(throws: ShardIDError.self) { try ShardID.smallestFree(in: ["1", "node-a"]) }
    }

    /// Nodes starting together get distinct shard ids under the id-assignment lock.
    @Test func nodesStartingTogetherClaimDistinctShardIDs() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        // The nodes stay up (their member nodes with them) until all have chosen.
        let claimed = try await withThrowingTaskGroup(of: (String, ZooKeeperClient).self) { group in
            for index in 0..<5 {
                group.addTask {
                    let client = try await connectedTestClient(server.connectString)
                    let (id, chosen) = try await ShardID.claim(
                        client: client, lockPath: "\(root)/id_assignment_lock", membersPath: "\(root)/nodes",
                        quietPeriod: index.isMultiple(of: 2) ? .milliseconds(100) : nil
                    ) { id in
                        try await client.create("\(root)/nodes/\(id)@host\(index):9599", mode: .ephemeral, parents: .persistent)
                    }
                    #expect(chosen)
                    return (id, client)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(claimed.map(\.0).sorted() == ["1", "2", "3", "4", "5"])
        for (_, client) in claimed { await client.close() }
    }

    @Test func anExistingShardIDIsRegisteredWithoutChoosing() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        try await client.create("\(root)/nodes/1@other:9599", mode: .ephemeral, parents: .persistent)
        // "1" is taken, but a configured id is used as given (sequins' replacement nodes share ids).
        let (id, chosen) = try await ShardID.claim(
            client: client, lockPath: "\(root)/id_assignment_lock", membersPath: "\(root)/nodes", existing: "1"
        ) { id in
            try await client.create("\(root)/nodes/\(id)@replacement:9599", mode: .ephemeral)
        }
        #expect(id == "1")
        #expect(!chosen)
        #expect(try await client.getChildren("\(root)/nodes").names.sorted() == ["1@other:9599", "1@replacement:9599"])
        await client.close()
    }
}
