import DemoSupport
import Foundation
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

@Suite struct ConfigurationAndParsingTests {
    /// Sensei's own two-node fixture (node 1 of TestSensei).
    @Test func senseiFixtureProperties() throws {
        let configuration = try SenseiConfiguration(properties: """
            sensei.node.id=1
            sensei.node.partitions=0,1
            sensei.server.port=1223
            sensei.broker.port=8079
            sensei.cluster.name=testCluster
            sensei.cluster.url=localhost:2181
            sensei.cluster.timeout=30000
            sensei.index.directory=/tmp/sensei-index-test-1
            sensei.index.manager.default.maxpartition.id=2
            sensei.gateway.class=com.senseidb.gateway.file.LinedFileDataProviderBuilder
            sensei.gateway.file.path=src/test/resources/data/test_data.json
            sensei.server.requestThreadCorePoolSize=20
            sensei.broker.timeout=5000
            """)
        #expect(configuration.nodeID == 1)
        #expect(configuration.partitions == [0, 1])
        #expect(configuration.partitionCount == 3)
        #expect(configuration.clusterName == "testCluster")
        #expect(configuration.clusterTimeout == .seconds(30))
        #expect(configuration.brokerTimeout == .seconds(5))
        #expect(configuration.partitionTimeout == .seconds(8))
        #expect(configuration.gatewayFilePath == "src/test/resources/data/test_data.json")
        #expect(configuration.ignoredKeys == ["sensei.server.requestThreadCorePoolSize"])
    }

    @Test func partitionRanges() throws {
        #expect(try SenseiConfiguration.parsePartitions("1,4-7,10") == [1, 4, 5, 6, 7, 10])
        #expect(try SenseiConfiguration.parsePartitions(" 0 , 1 ") == [0, 1])
        // Split as Sensei splits it: commas and whitespace, any number of them.
        #expect(try SenseiConfiguration.parsePartitions("0 1\t2") == [0, 1, 2])
        #expect(try SenseiConfiguration.parsePartitions("1,,2") == [1, 2])
        for bad in ["", " , ", "7-4", "a", "1-", "-1"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try SenseiConfiguration.parsePartitions(bad) }
        }
    }

    @Test func badConfigurationsNameTheKey() {
        let base = "sensei.node.id=1\nsensei.node.partitions=0\n"
        func error(_ text: String) -> String {
            do { _ = try SenseiConfiguration(properties: text); return "no error" } catch { return "\(error)" }
        }
        #expect(error(base + "sensei.node.partiton=3") == "unknown configuration key sensei.node.partiton")
        #expect(error("sensei.node.partitions=0") == "sensei.node.id is required")
        #expect(error("sensei.node.id=1") == "sensei.node.partitions is required")
        #expect(error(base + "sensei.server.port=http") == "sensei.server.port must be an integer, got \"http\"")
        #expect(error("sensei.node.id=1\nsensei.node.partitions=0,3\nsensei.index.manager.default.maxpartition.id=2").contains("partition 3"))
        #expect(error(base + "sensei.broker.timeout=0").contains("sensei.broker.timeout"))
        #expect(error(base + "sensei.gateway.class=com.senseidb.gateway.kafka.KafkaDataProviderBuilder").contains("only the file gateway"))
        #expect(error(base + "sensei.sharding.strategy=range").contains("sensei.sharding.strategy"))
        #expect(error(base + "unrelated.key=1") == "no error")
    }

    @Test func shardingIsUIDModuloOrHash() {
        let modulo = ShardingStrategy.uidModulo
        #expect(modulo.partition(uid: "7", partitionCount: 3) == 1)
        #expect(modulo.partition(uid: "-7", partitionCount: 3) == 1)
        #expect(modulo.partition(uid: String(Int64.min), partitionCount: 3) == Int(Int64.min.magnitude % 3))
        #expect(modulo.partition(uid: "car-1", partitionCount: 3) == nil)
        var generator = SeededRandomNumberGenerator(seed: 3)
        var counts = [0, 0, 0, 0]
        for _ in 0..<4000 {
            let uid = "doc-\(generator.next())"
            let partition = ShardingStrategy.uidHash.partition(uid: uid, partitionCount: 4)!
            #expect(partition == ShardingStrategy.uidHash.partition(uid: uid, partitionCount: 4))
            counts[partition] += 1
        }
        #expect(counts.allSatisfy { (850...1150).contains($0) }, "\(counts)")
    }

    @Test func schemaErrorsNameThePart() {
        func error(_ json: String) -> String {
            do { _ = try SearchSchema(json: Data(json.utf8)); return "no error" } catch { return "\(error)" }
        }
        #expect(error("[]") == "schema: not a JSON object")
        #expect(error(#"{"table": {"columns": []}}"#) == "schema: table.uid must name the uid field")
        #expect(error(#"{"table": {"uid": "id", "columns": [{"name": "x", "type": "blob"}]}}"#).contains("unknown type blob"))
        #expect(error(#"{"table": {"uid": "id", "columns": []}, "facets": [{"name": "x"}]}"#).contains("facet x reads column x"))
        #expect(error(#"{"table": {"uid": "id", "columns": [{"name": "y", "type": "string"}]}, "facets": [{"name": "y", "type": "range", "params": [{"name": "range", "value": "[1 TO 2]"}]}]}"#).contains("needs a numeric column"))
        #expect(error(#"{"table": {"uid": "id", "columns": [{"name": "y", "type": "int"}]}, "facets": [{"name": "y", "type": "range", "params": [{"name": "range", "value": "1 to 2"}]}]}"#).contains("is not a range"))
        #expect(Corpus.schema.fullTextColumns == ["contents"])
    }

    @Test func queryStrings() throws {
        #expect(try QueryString.parse("") == .all)
        #expect(try QueryString.parse("this AND that OR thus") == .or([.and([.term(field: nil, text: "this"), .term(field: nil, text: "that")]), .term(field: nil, text: "thus")]))
        #expect(try QueryString.parse("a b") == .or([.term(field: nil, text: "a"), .term(field: nil, text: "b")]))
        #expect(try QueryString.parse("a NOT b") == .and([.term(field: nil, text: "a"), .not(.term(field: nil, text: "b"))]))
        #expect(try QueryString.parse("+a -b") == .and([.term(field: nil, text: "a"), .not(.term(field: nil, text: "b"))]))
        #expect(try QueryString.parse("a c OR NOT b") == .and([.or([.term(field: nil, text: "a"), .term(field: nil, text: "c")]), .not(.term(field: nil, text: "b"))]))
        #expect(try QueryString.parse("NOT b") == .not(.term(field: nil, text: "b")))
        #expect(try QueryString.parse("color:red AND contents:\"leather seats\"") == .and([.term(field: "color", text: "red"), .phrase(field: "contents", text: "leather seats")]))
        #expect(try QueryString.parse("(a OR b) AND NOT c") == .and([.or([.term(field: nil, text: "a"), .term(field: nil, text: "b")]), .not(.term(field: nil, text: "c"))]))
        #expect(try QueryString.parse("1993-1994") == .term(field: nil, text: "1993-1994"))
        // default_operator: and — side-by-side clauses are AND'ed, an explicit OR stays.
        #expect(try QueryString.parse("a b OR c", defaultOperator: .and) == .or([.and([.term(field: nil, text: "a"), .term(field: nil, text: "b")]), .term(field: nil, text: "c")]))
        // A term without a field searches the default field(s).
        #expect(try QueryString.parse("a title:b").resolvingDefaultFields(["contents"]) == .or([.term(field: "contents", text: "a"), .term(field: "title", text: "b")]))
        #expect(QueryNode.term(field: nil, text: "a").resolvingDefaultFields(["x", "y"]) == .or([.term(field: "x", text: "a"), .term(field: "y", text: "a")]))
        for bad in ["(a", "a AND", "\"open", "a )", "color:", "AND a"] {
            #expect(throws: QueryParseError.self, "\(bad)") { try QueryString.parse(bad) }
        }
        #expect(Tokenizer.tokens("Leather-Seats, V8 Ünïcode!") == ["leather", "seats", "v8", "ünïcode"])
        #expect(Tokenizer.tokens("Leather-Seats, V8 unicode!") == ["leather", "seats", "v8", "unicode"])
        // The ASCII fast path agrees with the Unicode path on random ASCII text.
        var generator = SeededRandomNumberGenerator(seed: 9)
        let alphabet = Array("abcXYZ019 -,.!_\t")
        for _ in 0..<500 {
            let text = String((0..<Int.random(in: 0...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            var words: [String] = []
            #expect(Tokenizer.forEachASCIIToken(text) { words.append($0) })
            #expect(words == Tokenizer.unicodeTokens(text), "\(text)")
        }
        var none: [String] = []
        #expect(!Tokenizer.forEachASCIIToken("ab café") { none.append($0) } && none.isEmpty, "non-ASCII text is left to the Unicode path, untouched")
        #expect(Tokenizer.tokens("ÉTÉ été x1") == ["été", "été", "x1"])
    }

    @Test func senseiRequestJSON() throws {
        let json = """
            { "query": {"query_string": {"query": "this AND that"}}, "from": 5, "size": 20,
              "selections": [ {"terms": {"color": {"values": ["red", "blue"], "excludes": ["green"], "operator": "or"}}},
                              {"range": {"year": {"from": 1993, "to": 1994, "include_lower": true, "include_upper": false}}} ],
              "facets": {"color": {"max": 10, "minCount": 1, "expand": false, "order": "val"}},
              "sort": [{"year": "desc"}, "_score"], "routeParam": "user-1", "fetchStored": true }
            """
        let request = try SearchRequest(senseiJSON: Data(json.utf8))
        #expect(request.query == "this AND that")
        #expect(request.from == 5 && request.size == 20)
        #expect(request.selections.count == 2)
        #expect(request.selections.contains(SearchRequest.Selection(field: "color", values: ["red", "blue"], excludes: ["green"])))
        #expect(request.selections.contains(SearchRequest.Selection(field: "year", range: SearchRequest.NumericRange(low: 1993, high: 1994, includeLow: true, includeHigh: false))))
        #expect(request.facets["color"] == .init(max: 10, minCount: 1, order: .val, expand: false))
        #expect(request.defaultFields == ["contents"] && request.defaultOperator == .or)
        let expanded = try SearchRequest(senseiJSON: Data(#"{"facets": {"color": {"expand": true}, "year": {}}}"#.utf8))
        #expect(expanded.facets["color"]?.expand == true && expanded.facets["year"]?.expand == false, "Sensei's default is expand: false")
        let fields = try SearchRequest(senseiJSON: Data(#"{"query": {"query_string": {"query": "a b", "default_field": "title", "fields": ["contents"], "default_operator": "AND"}}}"#.utf8))
        #expect(fields.defaultFields == ["title", "contents"] && fields.defaultOperator == .and)
        #expect(request.sort == [.init(field: "year", descending: true), .relevance])
        #expect(request.routeParam == "user-1")
        #expect(request.fetchStored)
        func error(_ json: String) -> String {
            do { _ = try SearchRequest(senseiJSON: Data(json.utf8)); return "no error" } catch { return "\(error)" }
        }
        #expect(error("{") == "the request is not valid JSON")
        #expect(error(#"{"size": "ten"}"#) == "size must be an integer")
        #expect(error(#"{"sort": [{"year": "up"}]}"#) == "sort direction for year must be asc or desc, got up")
        #expect(error(#"{"query": {"match": {}}}"#).contains("unsupported query type match"))
        #expect(error(#"{"selections": [{"fuzzy": {"x": {}}}]}"#).contains("unsupported selection type fuzzy"))
        #expect(error(#"{"from": -1}"#) == "from and size must not be negative")
        // Huge values are refused, never added up into an overflow (which would stop the process).
        #expect(error(#"{"from": 9000000000000000000, "size": 9000000000000000000}"#) == "from + size must be at most 100000")
        #expect(error(#"{"size": 1e30}"#) == "size must be an integer")
        #expect(error(#"{"facets": {"color": {"expand": "yes"}}}"#) == "facets.color.expand must be true or false")
        #expect(error(#"{"query": {"query_string": {"query": "a", "default_operator": "xor"}}}"#).contains("default_operator must be and or or"))
    }

    /// The URL's `start` and `rows` (and a broker's request to a node) are held to the same window
    /// when the request is validated, before anything adds them up.
    @Test func aHugeWindowFromTheURLIsRefusedWhenValidated() throws {
        let schema = try SearchSchema(json: Data(#"{"table": {"uid": "id", "columns": [{"name": "title", "type": "text"}]}, "facets": []}"#.utf8))
        let request = try SearchRequest(parameters: [("q", "title:ipad"), ("rows", "5000000000000000000"), ("start", "5000000000000000000")])
        #expect(throws: RequestError("from + size must be at most 100000")) { try request.validated(against: schema) }
        let fine = try SearchRequest(parameters: [("q", "title:ipad"), ("rows", "100"), ("start", "99900")])
        #expect(throws: Never.self) { try fine.validated(against: schema) }
    }

    @Test func senseiURLParameters() throws {
        let request = try SearchRequest(parameters: [
            ("q", "ipad"), ("start", "10"), ("rows", "5"), ("sort", "year:desc,relevance"), ("routeparam", "12345"),
            ("select.color.val", "red,blue"), ("select.color.not", "green"), ("select.color.op", "or"),
            ("facet.color.max", "3"), ("facet.color.order", "val"), ("facet.color.minhit", "2"), ("facet.color.expand", "true"),
        ])
        #expect(request.query == "ipad")
        #expect(request.from == 10 && request.size == 5)
        #expect(request.sort == [.init(field: "year", descending: true), .relevance])
        #expect(request.routeParam == "12345")
        #expect(request.selections == [.init(field: "color", values: ["red", "blue"], excludes: ["green"])])
        #expect(request.facets["color"] == .init(max: 3, minCount: 2, order: .val, expand: true))
        #expect(throws: RequestError.self) { try SearchRequest(parameters: [("facet.color.expand", "maybe")]) }
        #expect(throws: RequestError.self) { try SearchRequest(parameters: [("rows", "many")]) }
        #expect(throws: RequestError.self) { try SearchRequest(parameters: [("select.color.bogus", "x")]) }
    }

    @Test func formEncodingAsJettyReadsIt() {
        #expect(FormEncoding.decode("q=foo+AND+bar&json=%7B%22size%22%3A+5%7D&empty&x=a%2Bb").map { "\($0.name)=\($0.value)" }
            == ["q=foo AND bar", "json={\"size\": 5}", "empty=", "x=a+b"])
        #expect(FormEncoding.decodeComponent("caf%C3%A9+%zz") == "café %zz")
        #expect(FormEncoding.decode("select.year.val=%5B1995+TO+1996%5D&select.year.val=2000").map(\.value) == ["[1995 TO 1996]", "2000"])
    }

    @Test func aBareTermSearchesTheDefaultFieldAndAMissingOneIsNamed() throws {
        let schema = try SearchSchema(json: Data(#"{"table": {"uid": "id", "columns": [{"name": "title", "type": "text"}]}, "facets": []}"#.utf8))
        var request = SearchRequest()
        request.query = "word"
        #expect(throws: RequestError.self) { try request.validated(against: schema) }
        request.defaultFields = ["title"]
        #expect(try request.validated(against: schema) == .term(field: "title", text: "word"))
        request.query = "title:word"
        request.defaultFields = ["contents"]
        #expect(try request.validated(against: schema) == .term(field: "title", text: "word"), "a named field needs no default field")

        // With Sensei's default field, a word only in another text column is found by naming it.
        let both = try SearchSchema(
            json: Data(#"{"table": {"uid": "id", "columns": [{"name": "title", "type": "text"}, {"name": "contents", "type": "text"}]}, "facets": []}"#.utf8))
        let index = PartitionIndex(schema: both)
        index.add(try SearchDocument(jsonLine: #"{"id": 1, "title": "red car", "contents": "fast"}"#, schema: both))
        index.add(try SearchDocument(jsonLine: #"{"id": 2, "title": "blue", "contents": "red paint"}"#, schema: both))
        func hits(_ query: String) throws -> [String] {
            var search = SearchRequest()
            search.query = query
            return try index.search(search).hits.map(\.uid).sorted()
        }
        #expect(try hits("red") == ["2"])
        #expect(try hits("title:red") == ["1"])
        #expect(try hits("red OR title:red") == ["1", "2"])
    }
}
