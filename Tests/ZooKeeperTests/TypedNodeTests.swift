import Foundation
import Testing
import ZooKeeper
import ZooKeeperTesting

@Suite struct TypedNodeTests {
    struct Limits: Codable, Sendable, Hashable {
        var maxConnections: Int
        var name: String
    }

    /// A custom codec: an 8-byte big-endian counter (what Curator's DistributedAtomicLong stores).
    struct BigEndianInt64: NodeCodec {
        struct WrongLength: Error, CustomStringConvertible {
            var count: Int
            var description: String { "expected 8 bytes, found \(count)" }
        }
        func encode(_ value: Int64) throws -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        func decode(_ bytes: [UInt8]) throws -> Int64 {
            guard bytes.count == 8 else { throw WrongLength(count: bytes.count) }
            return bytes.reduce(0) { ($0 << 8) | Int64($1) }
        }
    }

    @Test func valuesRoundTripAndBadBytesAreNamed() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            let limits = TypedNode(client: client, path: path, as: Limits.self)
            try await limits.create(Limits(maxConnections: 100, name: "edge"), parents: .persistent)
            let (value, stat) = try await limits.get()
            #expect(value == Limits(maxConnections: 100, name: "edge"))
            #expect(try await client.getData(path).string == #"{"maxConnections":100,"name":"edge"}"#)
            try await limits.set(Limits(maxConnections: 200, name: "edge"), version: stat.version)
            #expect(try await limits.get().value.maxConnections == 200)
            await expectError(.badVersion) { try await limits.set(Limits(maxConnections: 1, name: "stale"), version: stat.version) }

            try await client.setData(path, data: Array("not json".utf8))
            let error = await expectError(.marshallingError) { try await limits.get() }
            #expect(error?.path == path)
            #expect(error?.message.contains("does not hold a Limits") == true)

            let counter = TypedNode(client: client, path: path + "-counter", codec: BigEndianInt64())
            try await counter.create(-4)
            #expect(try await client.getData(path + "-counter").bytes == [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc])
            #expect(try await counter.get().value == -4)
            try await client.setData(path + "-counter", data: [1, 2, 3])
            let short = await expectError(.marshallingError) { try await counter.get() }
            #expect(short?.message.contains("expected 8 bytes, found 3") == true)
            try await client.delete(path)
            try await client.delete(path + "-counter")
        }
    }

    /// The stream reports a value that does not decode and keeps going.
    @Test func theStreamReportsUndecodableValuesWithoutEnding() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            let limits = TypedNode(client: client, path: path, as: Limits.self)
            var updates = limits.updates().makeAsyncIterator()
            guard case .noNode? = try await updates.next() else { Issue.record("expected noNode first"); return }
            try await limits.create(Limits(maxConnections: 1, name: "a"))
            guard case .value(let first, _)? = try await updates.next() else { Issue.record("expected a value"); return }
            #expect(first.maxConnections == 1)
            try await client.setData(path, data: Array("{".utf8))
            guard case .undecodable(let error)? = try await updates.next() else { Issue.record("expected undecodable"); return }
            #expect(error.code == .marshallingError && error.path == path)
            try await limits.set(Limits(maxConnections: 2, name: "b"))
            guard case .value(let repaired, _)? = try await updates.next() else { Issue.record("expected the stream to go on"); return }
            #expect(repaired.maxConnections == 2)
            try await client.delete(path)
        }
    }
}
