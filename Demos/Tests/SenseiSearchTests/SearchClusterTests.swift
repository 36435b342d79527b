import Foundation
import NIOCore
import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import SenseiSearch

/// Sensei's `TestSensei` fixture as processes: node 1 serves partitions {0,1}, node 2 {1,2}, both
/// read the same gateway of generated documents; every query goes through a broker.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SearchClusterTests {
    static let documents = 3000

    func startFixture(_ cluster: SearchTestCluster) async throws {
        try cluster.writeGateway()
        try cluster.addNode(id: 1, partitions: "0,1").start()
        try cluster.addNode(id: 2, partitions: "1,2").start()
        // Sensei's waitTillServerStarts: until the broker sees every document.
        try await eventually("the broker counts every document", timeout: .seconds(60)) {
            guard let reply = try? await cluster.nodes[0].search("{}") else { return false }
            return reply.numhits == Self.documents && reply.errors.isEmpty
        }
    }

    @Test func theFixtureAnswersLikeTheData() async throws {
        try await withSearchCluster(count: Self.documents) { cluster in
            try await startFixture(cluster)
            try await checkLayout(cluster)
            try await checkAnswers(cluster)
            try await checkNodeRequests(cluster)
        }
    }

    /// Sensei's Zu layout: one ephemeral sequential member_ per (node, partition) with its endpoint.
    func checkLayout(_ cluster: SearchTestCluster) async throws {
        let observer = try ZooKeeperClient(connectString: cluster.zkConnect)
        _ = try await observer.connect()
        var endpoints: [SearchEndpoint] = []
        for name in try await observer.getChildren("/" + cluster.clusterName).names {
            #expect(name.hasPrefix("member_") && name.count == "member_".count + 10, "\(name)")
            let node = try await observer.getData("/" + cluster.clusterName + "/" + name)
            #expect(node.stat.isEphemeral)
            endpoints.append(try JSONDecoder().decode(SearchEndpoint.self, from: Data(node.bytes)))
        }
        await observer.close()
        let expected = [(1, 0), (1, 1), (2, 1), (2, 2)].map { node, shard in
            SearchEndpoint(host: "127.0.0.1", port: cluster.nodes[node - 1].serverPort, shard: shard, nodeId: node)
        }
        #expect(Set(endpoints) == Set(expected))
    }

    /// A node answers a broker's binary request as it answers the same request in JSON (as tools
    /// send it), and refuses a damaged one with the reason.
    func checkNodeRequests(_ cluster: SearchTestCluster) async throws {
        let node = "127.0.0.1:\(cluster.nodes[0].serverPort)"
        var request = SearchRequest()
        request.query = "leather turbo"
        request.size = 7
        request.facets = ["color": .init(max: 5)]
        request.selections = [.init(field: "year", range: .init(low: 1995, high: nil))]
        request.sort = [.init(field: "price", descending: false), .relevance]
        request.partitions = [0, 1]
        func ask(_ body: ByteBuffer, as contentType: String) async throws -> (status: Int, body: ByteBuffer) {
            let answer = try await SearchTestNode.exchange(.POST, address: node, "/node/search", headers: [("Content-Type", contentType)], body: body)
            return (answer.status, answer.body)
        }
        let json = try await ask(ByteBuffer(bytes: try JSONEncoder().encode(request)), as: "application/json")
        let binary = try await ask(SearchRequestWire.encode(request), as: SearchRequestWire.contentType)
        #expect(json.status == 200 && binary.status == 200)
        let result = try SearchResultWire.decode(binary.body)
        #expect(result.numhits > 0 && !result.hits.isEmpty, "\(result)")
        #expect(try SearchResultWire.decode(json.body) == result)
        let encoded = SearchRequestWire.encode(request)
        let damaged = try await ask(encoded.getSlice(at: 0, length: encoded.readableBytes - 3)!, as: SearchRequestWire.contentType)
        #expect(damaged.status == 400)
        #expect(String(buffer: damaged.body).contains("a broker's search request ends early"), "\(String(buffer: damaged.body))")
    }

    func checkAnswers(_ cluster: SearchTestCluster) async throws {
        let cars = cluster.corpus.cars
        let broker = cluster.nodes[1]
        // Totals: partition 1 is on both nodes and counted once.
        let all = try await broker.search("{}")
        #expect(all.numhits == Self.documents)
        #expect(all.totaldocs == Self.documents)
        // Facet counts equal counts computed from the data.
        let faceted = try await broker.search(#"{"facets": {"color": {"max": 10}, "year": {"max": 10}}}"#)
        var colors: [String: Int] = [:]
        for car in cars { colors[car.color, default: 0] += 1 }
        #expect(faceted.facets["color"] == colors)
        #expect(faceted.facets["year"]?["[1993 TO 1994]"] == cars.filter { (1993...1994).contains($0.year) }.count)
        // A selection, NOT, a range, and a query.
        let selected = try await broker.search(#"{"selections": [{"terms": {"color": {"values": ["red"], "excludes": [], "operator": "or"}}}]}"#)
        #expect(selected.numhits == cars.filter { $0.color == "red" }.count)
        let excluded = try await broker.search(#"{"selections": [{"terms": {"color": {"values": [], "excludes": ["red"]}}}]}"#)
        #expect(excluded.numhits == cars.filter { $0.color != "red" }.count)
        let ranged = try await broker.search(#"{"selections": [{"range": {"year": {"from": 2001, "to": 2002}}}]}"#)
        #expect(ranged.numhits == cars.filter { (2001...2002).contains($0.year) }.count)
        let queried = try await broker.search(#"{"query": {"query_string": {"query": "turbo AND NOT leather"}}}"#)
        #expect(queried.numhits == cars.filter { $0.contents.contains("turbo") && !$0.contents.contains("leather") }.count)
        // Pagination across nodes, sorted by a field: equal to sorting the data.
        let page = try await broker.search(#"{"from": 40, "size": 15, "sort": [{"price": "desc"}]}"#)
        let expected = cars.sorted { $0.price != $1.price ? $0.price > $1.price : $0.id < $1.id }.dropFirst(40).prefix(15).map(\.id)
        #expect(page.hitUIDs == Array(expected))
        // The older parameter API.
        let old = try #require(await broker.broker("/sensei?q=turbo&rows=3&select.color.val=blue"))
        let oldReply = try SearchReply(old.body)
        #expect(oldReply.numhits == cars.filter { $0.contents.contains("turbo") && $0.color == "blue" }.count)
        #expect(oldReply.hitUIDs.count == 3)
        // Parameters are form-encoded, as Jetty reads them: '+' is a space in every GET route and
        // in a form POST.
        func reply(_ path: String, form: String? = nil) async throws -> SearchReply {
            let answer = try #require(await broker.broker(path, form: form))
            try #require(answer.status == 200, "\(path): \(answer.body)")
            return try SearchReply(answer.body)
        }
        #expect(try await reply("/sensei?json=%7B%22size%22%3A+5%7D").hitUIDs.count == 5)
        #expect(try await reply("/sensei?q=turbo+AND+leather").numhits == cars.filter { $0.contents.contains("turbo") && $0.contents.contains("leather") }.count)
        #expect(try await reply("/sensei?select.year.val=%5B1993+TO+1994%5D").numhits == cars.filter { (1993...1994).contains($0.year) }.count)
        #expect(try await reply("/sensei", form: "json=%7B%22size%22%3A+3%7D").hitUIDs.count == 3)
        #expect(try await reply("/sensei", form: "q=turbo&rows=2").hitUIDs.count == 2)
        let getReply = try #require(await broker.broker("/sensei/get?json=%5B1%2C+2%5D"))
        #expect(getReply.status == 200 && getReply.body.contains("\"1\"") && getReply.body.contains("\"2\""), "\(getReply.body)")
        // expand: off (Sensei's default) a facet's own selection narrows its counts; on, it does not.
        let narrow = try await reply("/sensei?select.color.val=red&facet.color.max=20")
        #expect(narrow.facets["color"] == ["red": cars.filter { $0.color == "red" }.count])
        let wide = try await reply("/sensei?select.color.val=red&facet.color.max=20&facet.color.expand=true")
        #expect(wide.facets["color"] == colors)
        // sysinfo, get, a bad request. numdocs counts partition 1 on both nodes, as Sensei's does;
        // distinctdocs counts it once.
        let sysinfo = try #require(await broker.broker("/sensei/sysinfo"))
        #expect(sysinfo.body.contains("\"clusterinfo\""))
        let info = try #require(try JSONSerialization.jsonObject(with: Data(sysinfo.body.utf8)) as? [String: Any])
        let partitionOne = cars.filter { $0.id % 3 == 1 }.count
        #expect(info["numdocs"] as? Int == Self.documents + partitionOne && info["distinctdocs"] as? Int == Self.documents, "\(info)")
        #expect(try await broker.documentUIDs(get: [1, 2]) == ["1", "2"])
        let bad = try #require(await broker.broker("/sensei", json: #"{"sort": [{"year": "sideways"}]}"#))
        #expect(bad.status == 400)
        #expect(bad.body.contains("sort direction for year must be asc or desc"))
        // The line that is not JSON was skipped and counted by each node.
        for node in cluster.nodes {
            #expect(try await node.sysinfo().malformedLines == 1)
            #expect(node.log.contains("skipped a malformed gateway line"))
        }
    }

    @Test func theSameRouteParamPicksTheSameReplica() async throws {
        try await withSearchCluster(count: 600) { cluster in
            try cluster.writeGateway()
            try cluster.addNode(id: 1, partitions: "0,1").start()
            try cluster.addNode(id: 2, partitions: "1,2").start()
            try await eventually("the broker counts every document", timeout: .seconds(60)) {
                (try? await cluster.nodes[0].search("{}"))?.numhits == 600
            }
            func partitionOneSearches() async throws -> [Int] {
                var counts: [Int] = []
                for node in cluster.nodes { counts.append(try await node.sysinfo().searchesByPartition[1] ?? 0) }
                return counts
            }
            let before = try await partitionOneSearches()
            for _ in 0..<20 { _ = try await cluster.nodes[0].search(#"{"routeParam": "user-7"}"#) }
            let after = try await partitionOneSearches()
            let served = zip(after, before).map { $0 - $1 }
            #expect(served.sorted() == [0, 20], "one replica answered every time: \(served)")
            for index in 0..<40 { _ = try await cluster.nodes[1].search(#"{"routeParam": "user-\#(index)"}"#) }
            let spread = zip(try await partitionOneSearches(), after).map { $0 - $1 }
            #expect(spread.allSatisfy { $0 > 0 }, "different keys reach both replicas: \(spread)")
        }
    }

    @Test func aKilledNodeGivesPartialResultsAndARestartedOneRejoinsWithoutReindexing() async throws {
        try await withSearchCluster(count: 1500) { cluster in
            try cluster.writeGateway()
            try cluster.addNode(id: 1, partitions: "0,1").start()
            try cluster.addNode(id: 2, partitions: "1,2").start()
            try await eventually("the broker counts every document", timeout: .seconds(60)) {
                (try? await cluster.nodes[0].search("{}"))?.numhits == 1500
            }
            // A node that hangs mid-query (SIGSTOP): the broker answers within its timeout (3 s here),
            // with what the other node had and an error naming the partitions it waited for.
            cluster.nodes[1].pause()
            let hung = try await cluster.nodes[0].search(#"{"routeParam": "y"}"#)  // node 2 never answers
            #expect(hung.errors.contains { $0.contains("node 2 did not answer") && $0.contains("partitions") }, "\(hung.errors)")
            #expect((hung.numhits ?? 0) > 0 && (hung.numhits ?? 0) < 1500)
            cluster.nodes[1].resume()
            await cluster.nodes[1].kill9()
            // Until ZooKeeper expires node 2, the broker still routes to it and misses its answer;
            // afterwards partition 2 has no live node. Either way: a partial result, with errors.
            let partial = try await cluster.nodes[0].search(#"{"routeParam": "x"}"#)
            let errors = partial.errors
            #expect(!errors.isEmpty)
            #expect(errors.contains { $0.contains("2]") }, "\(errors)")
            let hits = try #require(partial.numhits)
            #expect(hits < 1500 && hits >= cluster.corpus.cars.filter { $0.id % 3 != 2 }.count - cluster.corpus.cars.filter { $0.id % 3 == 1 }.count)
            try await eventually("node 2 leaves the view", timeout: .seconds(30)) {
                let reply = try? await cluster.nodes[0].search("{}")
                return reply?.errors.contains { $0.contains("no live node") } == true
            }
            // Restarted: back in the view, everything answered, nothing read from the gateway again.
            try cluster.nodes[1].start()
            try await eventually("node 2 is back", timeout: .seconds(60)) {
                let reply = try? await cluster.nodes[0].search("{}")
                return reply?.numhits == 1500 && reply?.errors.isEmpty == true
            }
            let catchUps = cluster.nodes[1].log.split(separator: "\n").filter { $0.contains("caught up with the gateway") }
            #expect(catchUps.count == 2)
            #expect(catchUps.last?.contains("search.indexed=0") == true, "\(catchUps)")
            #expect(cluster.nodes[1].log.contains("search.documents=\(cluster.corpus.cars.filter { $0.id % 3 != 0 }.count)"), "the index came back from disk")
        }
    }

    /// kill -9 while a node indexes its gateway: it restarts from the position its store
    /// committed (its segments read back, not re-indexed) and ends with every document once.
    @Test func aNodeKilledWhileIndexingKeepsWhatItCommittedAndReadsTheRest() async throws {
        let total = 60_000
        try await withSearchCluster(count: total) { cluster in
            try cluster.writeGateway()
            let node = try cluster.addNode(id: 1, partitions: "0,1,2")
            try node.start()
            var seen = 0
            try await eventually("the node has indexed part of the gateway", timeout: .seconds(120)) {
                seen = (try? await node.sysinfo().numdocs) ?? 0
                return seen > 0
            }
            await node.kill9()
            try #require(seen < total, "the node finished before it could be killed; nothing was tested")
            try node.start()
            try await eventually("every document is there once", timeout: .seconds(120)) {
                let reply = try? await node.search("{}")
                return reply?.numhits == total && reply?.errors.isEmpty == true
            }
            let catchUps = node.log.split(separator: "\n").filter { $0.contains("caught up with the gateway") }
            let resumed = try #require(catchUps.last)
            #expect(!resumed.contains("search.from_line=0 "), "the restart resumed where the store left off: \(resumed)")
            #expect(try await node.sysinfo().numdocs == total)
        }
    }

    /// A node whose ZooKeeper session expires (its connection silenced through a fault proxy
    /// for longer than the session timeout) registers its partitions again on the new session.
    @Test func aNodeWhoseSessionExpiredRegistersItsPartitionsAgain() async throws {
        let server = try await ZooKeeperServer.shared()
        let proxy = try await FaultProxy.start(targetPort: server.port)
        defer { Task { await proxy.shutdown() } }
        try await withSearchCluster(count: 600) { cluster in
            try cluster.writeGateway()
            try cluster.addNode(id: 1, partitions: "0,1").start()
            let second = try cluster.addNode(id: 2, partitions: "1,2")
            second.zkConnect = proxy.connectString
            try second.start()
            try await eventually("the broker counts every document", timeout: .seconds(60)) {
                (try? await cluster.nodes[0].search("{}"))?.numhits == 600
            }
            let observer = try ZooKeeperClient(connectString: server.connectString)
            _ = try await observer.connect()
            let group = "/" + cluster.clusterName
            #expect(try await observer.getChildren(group).names.count == 4)
            proxy.blackhole()
            try await eventually("node 2's session expires and its members vanish", timeout: .seconds(30)) {
                try await observer.getChildren(group).names.count == 2
            }
            proxy.restore()
            try await eventually("node 2 registers its partitions again", timeout: .seconds(40)) {
                try await observer.getChildren(group).names.count == 4
            }
            try await eventually("every document is answered again", timeout: .seconds(30)) {
                let reply = try? await cluster.nodes[0].search("{}")
                return reply?.numhits == 600 && reply?.errors.isEmpty == true
            }
            await observer.close()
        }
    }

    /// A node whose broker port is taken stops (and leaves), instead of running on half started.
    @Test func aNodeThatCannotBindItsPortExits() async throws {
        try await withSearchCluster(count: 60) { cluster in
            try cluster.writeGateway()
            let first = try cluster.addNode(id: 1, partitions: "0,1,2")
            try first.start()
            try await eventually("node 1 serves", timeout: .seconds(60)) { (try? await first.search("{}"))?.numhits == 60 }
            let second = try cluster.addNode(id: 2, partitions: "1")
            second.brokerPort = first.brokerPort
            try second.start()
            #expect(await second.waitForExit().map { $0 != 0 } == true)
            #expect(second.log.contains("search stopped"), "\(second.log.suffix(2000))")
        }
    }
}
