import Foundation
import NIOCore
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

/// What nodes send brokers (the binary result) and what brokers send clients (Sensei's JSON,
/// written directly), as pure functions over many random results.
@Suite struct SearchResultWireTests {
    static func randomResult(_ random: inout SeededRandomNumberGenerator) -> SearchResult {
        func text() -> String {
            String((0..<Int.random(in: 0..<12, using: &random)).map { _ in "ab Z\"\\/\n\t\u{1}é😀{}".randomElement(using: &random)! })
        }
        let sortCount = Int.random(in: 0...2, using: &random)
        let hits = (0..<Int.random(in: 0...12, using: &random)).map { index -> SearchResult.Hit in
            let sortValues: [SearchResult.SortValue] = (0..<sortCount).map { _ in
                switch Int.random(in: 0..<3, using: &random) {
                case 0: .number(Double(Int.random(in: -1000...1000, using: &random)) / 8)
                case 1: .text(text())
                default: .missing
                }
            }
            let stored = Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0...2, using: &random)).map { ("column\($0)", (0..<Int.random(in: 0...2, using: &random)).map { _ in text() }) })
            let uid = Bool.random(using: &random) ? "\(Int64.random(in: -9_999_999...9_999_999, using: &random))" : "u-\(index)-" + text()
            return SearchResult.Hit(
                uid: uid, score: Float(Int.random(in: 0...100_000, using: &random)) / 1000, sortValues: sortValues, stored: stored,
                source: Bool.random(using: &random) ? text() : nil)
        }
        let facets = Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0...2, using: &random)).map { facet in
            ("facet\(facet)", (0..<Int.random(in: 0...4, using: &random)).map { _ in
                SearchResult.FacetCount(value: text(), count: Int.random(in: 0...1000, using: &random), selected: Bool.random(using: &random))
            })
        })
        let errors = (0..<Int.random(in: 0...2, using: &random)).map { _ in
            SearchResult.SearchError(errorType: text(), message: text(), errorCode: Int.random(in: 0...600, using: &random))
        }
        return SearchResult(numhits: Int.random(in: 0...1_000_000, using: &random), totaldocs: Int.random(in: 0...1_000_000, using: &random), hits: hits, facets: facets, errors: errors)
    }

    @Test func randomResultsSurviveTheWire() throws {
        var random = SeededRandomNumberGenerator(seed: 23)
        for _ in 0..<1_000 {
            let result = Self.randomResult(&random)
            #expect(try SearchResultWire.decode(SearchResultWire.encode(result)) == result)
        }
    }

    /// What would break the broker's merge is refused at the wire: a hit without a sort value
    /// for every sort field (the merge compares them by position), and counts that are negative
    /// or large enough to overflow when the nodes' counts are added up.
    @Test func aResultTheMergeCannotUseIsRefused() throws {
        let hit = SearchResult.Hit(uid: "1", score: 1, sortValues: [.number(1)], stored: [:], source: nil)
        let oneSortValue = SearchResultWire.encode(SearchResult(numhits: 1, totaldocs: 1, hits: [hit]))
        #expect(try SearchResultWire.decode(oneSortValue, sortFields: 1).hits == [hit])
        #expect(throws: RequestError.self) { try SearchResultWire.decode(oneSortValue, sortFields: 2) }
        for numhits in [-1, Int(Int64.max)] {
            #expect(throws: RequestError.self) { try SearchResultWire.decode(SearchResultWire.encode(SearchResult(numhits: numhits, totaldocs: 1, hits: []))) }
        }
    }

    /// The order hits are merged in is one total order, whatever the uids (numbers and text
    /// mixed) and sort values (NaN included): otherwise partitions, nodes and the broker could
    /// pick different hits for a page.
    @Test func hitOrderIsATotalOrder() {
        var random = SeededRandomNumberGenerator(seed: 25)
        let uids = ["10", "5x", "9", "007", "7", "-3", "abc", "", "9223372036854775807", "1e3"]
        let values: [SearchResult.SortValue] = [.number(1), .number(.nan), .number(-2), .text("a"), .missing]
        for sort in [[], [SearchRequest.SortField(field: "price", descending: true)]] {
            let order = HitOrder(sort: sort)
            let hits = (0..<40).map { _ in
                SearchResult.Hit(
                    uid: uids.randomElement(using: &random)!, score: Float(Int.random(in: 0...2, using: &random)),
                    sortValues: sort.map { _ in values.randomElement(using: &random)! }, stored: [:], source: nil)
            }
            for a in hits {
                #expect(!order.precedes(a, a))
                for b in hits {
                    #expect(!(order.precedes(a, b) && order.precedes(b, a)))
                    for c in hits where order.precedes(a, b) && order.precedes(b, c) { #expect(order.precedes(a, c)) }
                }
            }
        }
    }

    @Test func aDamagedResultIsRefusedWithAReason() throws {
        var random = SeededRandomNumberGenerator(seed: 24)
        for _ in 0..<300 {
            let bytes = SearchResultWire.encode(Self.randomResult(&random))
            let cut = Int.random(in: 0..<bytes.readableBytes, using: &random)
            #expect(throws: RequestError.self) { try SearchResultWire.decode(bytes.getSlice(at: 0, length: cut)!) }
            var longer = bytes
            longer.writeInteger(UInt8(0))
            #expect(throws: RequestError.self) { try SearchResultWire.decode(longer) }
        }
        var otherVersion = ByteBuffer()
        otherVersion.writeInteger(UInt8(99))
        #expect(throws: RequestError.self) { try SearchResultWire.decode(otherVersion) }
    }

    /// The broker's JSON is the document `JSONSerialization` makes of Sensei's response, value for
    /// value (numbers may be spelled differently: `1` and `1.0`).
    @Test func theResponseIsSenseisDocument() throws {
        var random = SeededRandomNumberGenerator(seed: 25)
        for _ in 0..<500 {
            let result = Self.randomResult(&random)
            var request = SearchRequest()
            request.query = "year:[2000 TO 2010] \"a/b\""
            let written = SenseiResponse.json(result, request: request, milliseconds: 7)
            var direct = try #require(try JSONSerialization.jsonObject(with: Data(written.readableBytesView)) as? [String: Any])
            var expected = SenseiResponse.object(result, request: request, milliseconds: 7)
            direct["tid"] = nil
            expected["tid"] = nil
            #expect(NSDictionary(dictionary: direct).isEqual(to: try #require(
                try JSONSerialization.jsonObject(with: SenseiResponse.data(expected)) as? [String: Any])), "\(String(buffer: written))")
        }
    }
}
