import Foundation
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

/// The index and the merge against answers computed directly from the generated data.
@Suite struct SearchTests {
    typealias Car = Corpus.Car

    /// A random request and the same conditions as plain predicates.
    struct Case {
        var request = SearchRequest()
        var query: (Car) -> Bool = { _ in true }
        var selections: [(field: String, test: (Car) -> Bool)] = []
    }

    func randomCase<G: RandomNumberGenerator>(using generator: inout G) -> Case {
        var test = Case()
        // A query of one or two words, maybe AND / OR / NOT.
        switch Int.random(in: 0..<5, using: &generator) {
        case 0: break
        case 1:
            let word = Corpus.words.randomElement(using: &generator)!
            test.request.query = word
            test.query = { $0.contents.contains(word) }
        case 2:
            let (a, b) = (Corpus.words.randomElement(using: &generator)!, Corpus.words.randomElement(using: &generator)!)
            test.request.query = "\(a) AND \(b)"
            test.query = { $0.contents.contains(a) && $0.contents.contains(b) }
        case 3:
            let (a, b) = (Corpus.words.randomElement(using: &generator)!, Corpus.words.randomElement(using: &generator)!)
            test.request.query = "\(a) OR \(b)"
            test.query = { $0.contents.contains(a) || $0.contents.contains(b) }
        default:
            let (a, b) = (Corpus.words.randomElement(using: &generator)!, Corpus.words.randomElement(using: &generator)!)
            test.request.query = "\(a) NOT \(b)"
            test.query = { $0.contents.contains(a) && !$0.contents.contains(b) }
        }
        if Bool.random(using: &generator) {
            let values = Array(Corpus.colors.shuffled(using: &generator).prefix(Int.random(in: 1...2, using: &generator)))
            let excludes = Bool.random(using: &generator) ? [Corpus.colors.randomElement(using: &generator)!] : []
            test.request.selections.append(.init(field: "color", values: values, excludes: excludes))
            test.selections.append(("color", { values.contains($0.color) && !excludes.contains($0.color) }))
        }
        if Bool.random(using: &generator) {
            let low = Int.random(in: 1990...2005, using: &generator)
            let high = Int.random(in: low...2005, using: &generator)
            test.request.selections.append(.init(field: "year", range: .init(low: Double(low), high: Double(high))))
            test.selections.append(("year", { (low...high).contains($0.year) }))
        }
        if Bool.random(using: &generator) {
            let tag = Corpus.tags.randomElement(using: &generator)!
            let and = Bool.random(using: &generator)
            let second = Corpus.tags.randomElement(using: &generator)!
            test.request.selections.append(.init(field: "tags", values: [tag, second], operator: and ? .and : .or))
            test.selections.append(("tags", { and ? ($0.tags.contains(tag) && $0.tags.contains(second)) : ($0.tags.contains(tag) || $0.tags.contains(second)) }))
        }
        if Int.random(in: 0..<4, using: &generator) == 0 {
            let path = ["car", "truck", "car/sedan"].randomElement(using: &generator)!
            test.request.selections.append(.init(field: "category", values: [path]))
            test.selections.append(("category", { $0.category == path || $0.category.hasPrefix(path + "/") }))
        }
        test.request.facets = [
            "color": .init(max: 100, minCount: 1, expand: Bool.random(using: &generator)),
            "year": .init(max: 100, minCount: 1, expand: Bool.random(using: &generator)),
            "tags": .init(max: 100, minCount: 1, expand: Bool.random(using: &generator)),
        ]
        test.request.sort = [.init(field: "year", descending: Bool.random(using: &generator)), .init(field: "price", descending: true)]
        test.request.from = Int.random(in: 0...20, using: &generator)
        test.request.size = Int.random(in: 0...30, using: &generator)
        return test
    }

    /// Direct answers: hit uids in order, the hit count, and facet counts (over the documents that
    /// pass every selection; with `expand`, every selection but the facet's own, as Bobo counts).
    func expected(_ test: Case, corpus: Corpus) -> (hits: [String], count: Int, facets: [String: [String: Int]]) {
        let matching = corpus.cars.filter { car in test.query(car) && test.selections.allSatisfy { $0.test(car) } }
        let descending = test.request.sort[0].descending
        let sorted = matching.sorted { a, b in
            if a.year != b.year { return descending ? a.year > b.year : a.year < b.year }
            if a.price != b.price { return a.price > b.price }
            return a.id < b.id
        }
        var facets: [String: [String: Int]] = [:]
        for facet in ["color", "year", "tags"] {
            let expand = test.request.facets[facet]!.expand
            for car in corpus.cars where test.query(car) && test.selections.allSatisfy({ (expand && $0.field == facet) || $0.test(car) }) {
                switch facet {
                case "color": facets[facet, default: [:]][car.color, default: 0] += 1
                case "tags": for tag in car.tags { facets[facet, default: [:]][tag, default: 0] += 1 }
                default:
                    for range in Corpus.schema.facet(named: "year")!.ranges where range.contains(Double(car.year)) {
                        facets[facet, default: [:]][range.label, default: 0] += 1
                    }
                }
            }
        }
        let page = sorted.dropFirst(test.request.from).prefix(test.request.size).map { String($0.id) }
        return (Array(page), matching.count, facets)
    }

    func counts(_ result: SearchResult) -> [String: [String: Int]] {
        result.facets.mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0.value, $0.count) }) }.filter { !$0.value.isEmpty }
    }

    @Test func oneIndexAnswersLikeTheDataInRandomizedRequests() throws {
        var generator = SeededRandomNumberGenerator(seed: 7)
        let corpus = Corpus(count: 800, using: &generator)
        let index = try corpus.index()
        for _ in 0..<300 {
            let test = randomCase(using: &generator)
            let want = expected(test, corpus: corpus)
            let result = ResultMerger.merge([try index.search(test.request)], request: test.request)
            #expect(result.numhits == want.count, "\(test.request)")
            #expect(result.hits.map(\.uid) == want.hits, "\(test.request)")
            #expect(counts(result) == want.facets.filter { !$0.value.isEmpty }, "\(test.request)")
            #expect(result.totaldocs == 800)
        }
    }

    /// Three partitions on two "nodes" ({0,1} and {1,2}): one replica per partition is asked, the
    /// partitions' results are combined on each node and merged by the broker, and the answer
    /// equals one index over everything (no double counting, pagination across nodes).
    @Test func partitionsMergedAcrossNodesAnswerLikeOneIndex() throws {
        var generator = SeededRandomNumberGenerator(seed: 11)
        let corpus = Corpus(count: 900, using: &generator)
        let partitions = try (0..<3).map { try corpus.index(partitions: [$0], partitionCount: 3) }
        let router = ConsistentHashRouter(view: [0: [1], 1: [1, 2], 2: [2]], bucketsPerNode: 100)
        for round in 0..<200 {
            let test = randomCase(using: &generator)
            let nodeRequest = test.request.forNodes
            let plan = router.plan(for: "route-\(round)")
            #expect(plan.values.flatMap { $0 }.sorted() == [0, 1, 2])
            let nodeResults = try plan.values.map { owned in
                ResultMerger.combineOnNode(try owned.map { try partitions[$0].search(nodeRequest) }, request: nodeRequest)
            }
            let result = ResultMerger.merge(nodeResults, request: test.request)
            let want = expected(test, corpus: corpus)
            #expect(result.numhits == want.count, "\(test.request)")
            #expect(result.hits.map(\.uid) == want.hits, "\(test.request)")
            #expect(counts(result) == want.facets.filter { !$0.value.isEmpty }, "\(test.request)")
            #expect(result.totaldocs == 900)
        }
    }

    @Test func facetsAreCutToMaxKeepingSelectedValuesAndOrdered() {
        let counts = [("a", 5), ("b", 9), ("c", 1), ("d", 9), ("e", 3)].map { SearchResult.FacetCount(value: $0.0, count: $0.1) }
        var request = SearchRequest()
        request.facets["f"] = .init(max: 2, minCount: 2, order: .hits)
        request.selections = [.init(field: "f", values: ["e"])]
        let merged = ResultMerger.merge([SearchResult(facets: ["f": counts])], request: request)
        #expect(merged.facets["f"]!.map(\.value) == ["b", "d", "e"])
        #expect(merged.facets["f"]!.map(\.selected) == [false, false, true])
        request.facets["f"] = .init(max: 10, minCount: 1, order: .val)
        #expect(ResultMerger.merge([SearchResult(facets: ["f": counts])], request: request).facets["f"]!.map(\.value) == ["a", "b", "c", "d", "e"])
    }

    @Test func relevanceRanksDocumentsWithMoreOccurrencesFirst() throws {
        let index = PartitionIndex(schema: Corpus.schema)
        for (id, text) in ["turbo", "turbo turbo turbo", "quiet roomy", "turbo quiet roomy seats clean mint manual"].enumerated() {
            index.add(try SearchDocument(jsonLine: #"{"id":\#(id),"contents":"\#(text)"}"#, schema: Corpus.schema))
        }
        var request = SearchRequest()
        request.query = "turbo"
        let hits = try index.search(request).hits
        #expect(hits.map(\.uid) == ["1", "0", "3"])
        #expect(hits[0].score > hits[1].score && hits[1].score > hits[2].score)
        request.query = "\"quiet roomy\""
        #expect(try index.search(request).hits.map(\.uid).sorted() == ["2", "3"])
        request.query = "\"roomy quiet\""
        #expect(try index.search(request).numhits == 0)
        request.query = "color:red OR contents:mint"
        #expect(try index.search(request).hits.map(\.uid) == ["3"])
    }

    /// Relevance order without selections or facets takes a shortcut; it must agree with the
    /// general path (forced here by asking for a facet).
    @Test func theRelevanceShortcutOrdersLikeTheGeneralPath() throws {
        var generator = SeededRandomNumberGenerator(seed: 13)
        let corpus = Corpus(count: 700, using: &generator)
        let index = try corpus.index()
        for _ in 0..<200 {
            var request = randomCase(using: &generator).request
            request.selections = []
            request.sort = []
            request.facets = [:]
            let shortcut = try index.search(request)
            request.facets = ["color": .init()]
            let general = try index.search(request)
            #expect(shortcut.hits == general.hits, "\(request.query)")
            #expect(shortcut.numhits == general.numhits)
        }
    }

    @Test func replacingAndDeletingByUID() throws {
        let index = PartitionIndex(schema: Corpus.schema)
        index.add(try SearchDocument(jsonLine: #"{"id":5,"color":"red","contents":"turbo"}"#, schema: Corpus.schema))
        index.add(try SearchDocument(jsonLine: #"{"id":5,"color":"blue","contents":"quiet"}"#, schema: Corpus.schema))
        var request = SearchRequest()
        request.query = "turbo"
        #expect(try index.search(request).numhits == 0)
        request.query = "quiet"
        #expect(try index.search(request).hits.first?.stored["color"] == ["blue"])
        #expect(index.liveCount == 1)
        index.delete(uid: "5")
        #expect(try index.search(SearchRequest()).numhits == 0)
    }

    @Test func unknownFieldsAndBadQueriesAreNamed() throws {
        let index = PartitionIndex(schema: Corpus.schema)
        var request = SearchRequest()
        request.query = "wheels:4"
        #expect(throws: RequestError("unknown field wheels in the query")) { try index.search(request) }
        request.query = "(turbo"
        #expect(throws: QueryParseError.self) { try index.search(request) }
        request.query = ""
        request.facets["wheels"] = .init()
        #expect(throws: RequestError("unknown facet wheels")) { try index.search(request) }
    }

    @Test func badDocumentsSayWhy() {
        #expect(throws: SearchDocument.Error(description: "not a JSON object")) { try SearchDocument(jsonLine: "{nope", schema: Corpus.schema) }
        #expect(throws: SearchDocument.Error(description: "no uid field id")) { try SearchDocument(jsonLine: #"{"color":"red"}"#, schema: Corpus.schema) }
        #expect(throws: SearchDocument.Error(description: "column year is int but has \"old\"")) {
            try SearchDocument(jsonLine: #"{"id":1,"year":"old"}"#, schema: Corpus.schema)
        }
    }
}
