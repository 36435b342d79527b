import Foundation
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// Service discovery: Curator's instance document byte for byte and back (pure, randomized),
/// the down-instance rule (pure), then registration, the cache and the providers against a real
/// server, across an expiry and with a corrupt document.
@Suite struct ServiceDiscoveryTests {
    @Test func theDocumentIsCuratorsByteForByte() throws {
        let instance = ServiceInstance(
            name: "orders", id: "4b7b5b9a", address: "10.0.0.7", port: 8080,
            payload: .object(["zone": .string("eu-1"), "weight": .integer(3), "big": .integer(1 << 40), "tags": .array([.string("a")])]),
            uriSpec: ServiceInstance.URISpec("{scheme}://{address}:{port}/api"), registrationTimeUTC: 1_700_000_000_123)
        #expect(instance.curatorJSON == #"""
            {"name":"orders","id":"4b7b5b9a","address":"10.0.0.7","port":8080,"sslPort":null,"payload":{"@class":"java.util.HashMap","big":1099511627776,"tags":["a"],"weight":3,"zone":"eu-1"},"registrationTimeUTC":1700000000123,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true},{"value":"/api","variable":false}]}}
            """#)
        // What Curator 5.4's JsonInstanceSerializer wrote for an instance with a Map payload.
        let java = #"{"name":"billing","id":"b-1","address":"host-b","port":9000,"sslPort":null,"payload":{"@class":"java.util.HashMap","zone":"us-2","shards":[1,2]},"registrationTimeUTC":1733480000000,"serviceType":"DYNAMIC","uriSpec":null}"#
        let read = try ServiceInstance(curatorJSON: Array(java.utf8), path: "/services/billing/b-1")
        #expect(read.name == "billing" && read.id == "b-1" && read.address == "host-b" && read.port == 9000 && read.sslPort == nil)
        #expect(read.payload == .object(["zone": .string("us-2"), "shards": .array([.integer(1), .integer(2)])]))
        #expect(read.serviceType == .dynamic && read.uriSpec == nil && read.registrationTimeUTC == 1_733_480_000_000)
    }

    /// A disabled instance says so (Curator's non-compatible field, which its readers take in
    /// either mode); an enabled one is written as Curator's default mode writes it, without the field.
    @Test func aDisabledInstanceIsWrittenAsDisabled() throws {
        var instance = ServiceInstance(name: "orders", id: "o-1", address: "10.0.0.7", port: 8080, registrationTimeUTC: 1)
        #expect(!instance.curatorJSON.contains("enabled"))
        instance.enabled = false
        #expect(instance.curatorJSON.hasSuffix(#""uriSpec":null,"enabled":false}"#))
        let read = try ServiceInstance(curatorJSON: Array(instance.curatorJSON.utf8), path: "/services/orders/o-1")
        #expect(read == instance)
    }

    @Test func aPayloadIsTypedAtTheTopOnly() throws {
        #expect(ServicePayload.integer(1 << 40).curatorJSON == #"["java.lang.Long",1099511627776]"#)
        #expect(ServicePayload.integer(7).curatorJSON == "7")
        #expect(ServicePayload.array([.integer(1 << 40), .array([])]).curatorJSON == #"["java.util.ArrayList",[1099511627776,[]]]"#)
        #expect(ServicePayload.string("x").curatorJSON == #""x""#)
        for payload in [ServicePayload.integer(1 << 40), .array([.string("java.lang.Long"), .integer(1)]), .object(["@class": .integer(1)])] {
            let document = ServiceInstance(name: "s", id: "i", payload: payload, registrationTimeUTC: 0).curatorJSON
            let read = try ServiceInstance(curatorJSON: Array(document.utf8), path: "/s/i").payload
            if case .object = payload { continue }  // a member named @class is Jackson's, not ours
            #expect(read == payload, "\(document)")
        }
    }

    @Test func randomInstancesSurviveTheRoundTrip() throws {
        var random = SeededRandomNumberGenerator(seed: 7)
        func payload(depth: Int) -> ServicePayload {
            switch Int.random(in: 0..<(depth > 2 ? 5 : 7), using: &random) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &random))
            case 2: return .integer(Int64.random(in: .min ... .max, using: &random))
            case 3: return .string(String((0..<Int.random(in: 0..<8, using: &random)).map { _ in "aZ\"\\\n\t é😀/{}".randomElement(using: &random)! }))
            case 4: return .double(Double(Int.random(in: -1000...1000, using: &random)) + 0.5)
            case 5: return .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in payload(depth: depth + 1) })
            default: return .object(Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0..<4, using: &random)).map { ("k\($0)", payload(depth: depth + 1)) }))
            }
        }
        for _ in 0..<500 {
            let instance = ServiceInstance(
                name: "svc", id: UUID().uuidString.lowercased(), address: Bool.random(using: &random) ? "h" : nil,
                port: Bool.random(using: &random) ? Int.random(in: 1...65535, using: &random) : nil, sslPort: nil,
                payload: Bool.random(using: &random) ? payload(depth: 0) : nil,
                serviceType: ServiceInstance.ServiceType.allCases.randomElement(using: &random)!,
                registrationTimeUTC: Int64.random(in: 0...2_000_000_000_000, using: &random))
            let read = try ServiceInstance(curatorJSON: Array(instance.curatorJSON.utf8), path: "/s")
            var expected = instance
            if expected.payload == .null { expected.payload = nil }  // null is no payload
            #expect(read == expected, "\(instance.curatorJSON)")
        }
    }

    @Test func aDocumentThatDoesNotParseIsAnErrorNamingItsNode() {
        for bad in ["", "not json", "[1,2]", #"{"name":"x","serviceType":"SOMETIMES"}"#] {
            do {
                _ = try ServiceInstance(curatorJSON: Array(bad.utf8), path: "/services/x/i-1")
                Issue.record("parsed \(bad)")
            } catch {
                #expect(error.code == .marshallingError && error.path == "/services/x/i-1")
            }
        }
    }

    @Test func anInstanceIsDownAfterTheThresholdUntilTheTimeout() {
        var random = SeededRandomNumberGenerator(seed: 11)
        let start = ContinuousClock.now
        for _ in 0..<300 {
            let policy = DownInstances.Policy(timeout: .milliseconds(Int.random(in: 10...1000, using: &random)), threshold: Int.random(in: 1...4, using: &random))
            var down = DownInstances(policy: policy)
            var errors: [Duration] = []
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                let at = (errors.last ?? .zero) + .milliseconds(Int.random(in: 0...400, using: &random))
                down.noteError("i", at: start + at)
                errors.append(at)
            }
            let probe = (errors.last ?? .zero) + .milliseconds(Int.random(in: 0...400, using: &random))
            // The model: the errors since the first one that is still within the timeout of the
            // error after it was recorded make a window; down while the window is young enough.
            var windowStart: Duration?
            var count = 0
            for at in errors {
                if let first = windowStart, at - first >= policy.timeout { windowStart = nil; count = 0 }
                if windowStart == nil { windowStart = at }
                count += 1
            }
            let expected = windowStart.map { count >= policy.threshold && probe - $0 < policy.timeout } ?? false
            #expect(down.isDown("i", at: start + probe) == expected, "\(policy) errors \(errors) probe \(probe)")
            #expect(!down.isDown("other", at: start + probe))
        }
    }

    @Test(.timeLimit(.minutes(1))) func instancesAreRegisteredCachedAndKeptAcrossAnExpiry() async throws {
        let server = try await ZooKeeperServer.shared()
        let base = uniqueTestPath()
        let registrant = try await connectedTestClient(server.connectString)
        let reader = try await connectedTestClient(server.connectString)
        let discovery = ServiceDiscovery(client: registrant, basePath: base)
        let instances = (0..<3).map { ServiceInstance(name: "api", id: "i\($0)", address: "host-\($0)", port: 8000 + $0) }
        for instance in instances { try await discovery.register(instance) }
        #expect(try await registrant.exists("\(base)/api/i0")?.ephemeralOwner == registrant.state.session?.sessionID, "dynamic instances are ephemeral")

        let readerDiscovery = ServiceDiscovery(client: reader, basePath: base)
        #expect(try await readerDiscovery.serviceNames() == ["api"])
        #expect(try await readerDiscovery.instances(of: "api") == instances)
        let cache = readerDiscovery.cache(of: "api")
        cache.start()
        try await cache.waitUntilInitialized()
        #expect(cache.instances() == instances)

        // Round robin goes through every instance; sticky stays on one; a down instance is skipped.
        let roundRobin = ServiceProvider(cache: cache)
        #expect(Set((0..<6).compactMap { _ in roundRobin.instance()?.id }) == ["i0", "i1", "i2"])
        let sticky = ServiceProvider(cache: cache, strategy: .sticky)
        let stuck = sticky.instance()
        #expect((0..<5).allSatisfy { _ in sticky.instance() == stuck })
        let random = ServiceProvider(cache: cache, strategy: .random, downInstancePolicy: .init(timeout: .seconds(60), threshold: 1))
        random.noteError(instances[1])
        #expect((0..<50).allSatisfy { _ in random.instance()?.id != "i1" })
        #expect(random.instances().map(\.id) == ["i0", "i2"])

        // The registrant's session expires: its instances come back, and the cache follows.
        var changes = cache.changes().makeAsyncIterator()
        _ = try await changes.next()
        try await registrant.expireSessionForTesting()
        try await eventually("the instances are registered again") { try await reader.getChildren("\(base)/api").names.count == 3 }
        try await eventually("the cache has them") { cache.instances() == instances }

        var moved = instances[2]
        moved.port = 9999
        try await discovery.update(moved)
        try await eventually("the cache sees the update") { cache.instances().last?.port == 9999 }
        try await discovery.unregister(instances[0])
        try await eventually("the cache sees the unregistration") { cache.instances().map(\.id) == ["i1", "i2"] }

        // A corrupt document is reported, never silently dropped.
        try await reader.create("\(base)/api/broken", data: Array("{oops".utf8))
        try await eventually("the cache reports it") { cache.undecodable().map(\.path) == ["\(base)/api/broken"] }
        #expect(cache.instances().map(\.id) == ["i1", "i2"])
        do {
            _ = try await readerDiscovery.instances(of: "api")
            Issue.record("read a corrupt document")
        } catch let error as ZooKeeperError {
            #expect(error.code == .marshallingError && error.path == "\(base)/api/broken")
        }
        await #expect(throws: CoordinationError.self) { try await discovery.register(ServiceInstance(name: "a/b")) }
        await cache.close()
        await registrant.close()
        await reader.close()
    }
    /// A sequential instance's node is `<id><sequence>`: another ServiceDiscovery than the one
    /// that registered it cannot name it, and says so instead of writing to `<id>`.
    @Test func anUnregisteredSequentialInstanceCannotBeChangedFromElsewhere() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let base = uniqueTestPath()
        let discovery = ServiceDiscovery(client: client, basePath: base)
        let instance = ServiceInstance(name: "jobs", id: "worker-", serviceType: .dynamicSequential)
        await #expect { try await discovery.update(instance) } throws: { ($0 as? ZooKeeperError)?.code == .badArguments }
        await #expect { try await discovery.unregister(instance) } throws: { ($0 as? ZooKeeperError)?.code == .badArguments }
        #expect(try await client.exists(base) == nil, "nothing was written")
        await client.close()
    }
}
