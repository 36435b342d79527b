import Foundation
import NIOCore
import Testing
import ZooKeeperTesting

@testable import SenseiSearch

/// What brokers send nodes (the binary request), as pure functions over many random requests.
@Suite struct SearchRequestWireTests {
    static func randomRequest(_ random: inout SeededRandomNumberGenerator) -> SearchRequest {
        func text() -> String {
            String((0..<Int.random(in: 0..<10, using: &random)).map { _ in "ab Z\"\\:*\n\u{1}é😀()".randomElement(using: &random)! })
        }
        func bound() -> Double? { Bool.random(using: &random) ? Double(Int.random(in: -5000...5000, using: &random)) / 4 : nil }
        func selections() -> [SearchRequest.Selection] {
            (0..<Int.random(in: 0...2, using: &random)).map { _ in
                SearchRequest.Selection(
                    field: text(), values: (0..<Int.random(in: 0...3, using: &random)).map { _ in text() },
                    excludes: (0..<Int.random(in: 0...2, using: &random)).map { _ in text() },
                    operator: Bool.random(using: &random) ? .and : .or,
                    range: Bool.random(using: &random)
                        ? SearchRequest.NumericRange(
                            low: bound(), high: bound(), includeLow: Bool.random(using: &random), includeHigh: Bool.random(using: &random))
                        : nil)
            }
        }
        var request = SearchRequest()
        request.query = text()
        request.defaultFields = (0..<Int.random(in: 0...3, using: &random)).map { _ in text() }
        request.defaultOperator = Bool.random(using: &random) ? .and : .or
        request.from = Int.random(in: 0...1000, using: &random)
        request.size = Int.random(in: 0...1000, using: &random)
        request.selections = selections()
        request.filters = selections()
        request.facets = Dictionary((0..<Int.random(in: 0...3, using: &random)).map { index in
            ("facet\(index)" + text(), SearchRequest.FacetSpec(
                max: Int.random(in: 0...100, using: &random), minCount: Int.random(in: 0...5, using: &random),
                order: Bool.random(using: &random) ? .hits : .val, expand: Bool.random(using: &random)))
        }, uniquingKeysWith: { first, _ in first })
        request.sort = (0..<Int.random(in: 0...3, using: &random)).map { _ in SearchRequest.SortField(field: text(), descending: Bool.random(using: &random)) }
        request.routeParam = Bool.random(using: &random) ? text() : nil
        request.fetchStored = Bool.random(using: &random)
        request.partitions = Bool.random(using: &random) ? (0..<Int.random(in: 0...4, using: &random)).map { _ in Int.random(in: 0...64, using: &random) } : nil
        return request
    }

    @Test func randomRequestsSurviveTheWire() throws {
        var random = SeededRandomNumberGenerator(seed: 31)
        for _ in 0..<1_000 {
            let request = Self.randomRequest(&random)
            #expect(try SearchRequestWire.decode(SearchRequestWire.encode(request)) == request)
        }
    }

    /// Every field is carried: a request that differs from the default in each of them comes back
    /// equal, not defaulted.
    @Test func everyFieldIsCarried() throws {
        var request = SearchRequest()
        request.query = "q"
        request.defaultFields = ["title"]
        request.defaultOperator = .and
        request.from = 3
        request.size = 4
        request.selections = [.init(field: "color", values: ["red"], excludes: ["blue"], operator: .and, range: .init(low: 1, high: nil, includeLow: false))]
        request.filters = [.init(field: "year", range: .init(low: nil, high: 2, includeHigh: false))]
        request.facets = ["color": .init(max: 2, minCount: 0, order: .val, expand: true)]
        request.sort = [.init(field: "price", descending: false)]
        request.routeParam = "r"
        request.fetchStored = true
        request.partitions = []
        let decoded = try SearchRequestWire.decode(SearchRequestWire.encode(request))
        #expect(decoded == request)
        #expect(decoded != SearchRequest())
    }

    @Test func aDamagedRequestIsRefusedWithAReason() throws {
        var random = SeededRandomNumberGenerator(seed: 32)
        for _ in 0..<300 {
            let bytes = SearchRequestWire.encode(Self.randomRequest(&random))
            let cut = Int.random(in: 0..<bytes.readableBytes, using: &random)
            #expect(throws: RequestError.self) { try SearchRequestWire.decode(bytes.getSlice(at: 0, length: cut)!) }
            var longer = bytes
            longer.writeInteger(UInt8(0))
            #expect(throws: RequestError.self) { try SearchRequestWire.decode(longer) }
        }
        var otherVersion = ByteBuffer()
        otherVersion.writeInteger(UInt8(99))
        #expect(throws: RequestError.self) { try SearchRequestWire.decode(otherVersion) }
        // A flag that is neither 0 nor 1 (the last byte: partitions absent).
        var request = SearchRequest()
        request.partitions = nil
        var badFlag = SearchRequestWire.encode(request)
        badFlag.setInteger(UInt8(7), at: badFlag.writerIndex - 1)
        #expect(throws: RequestError.self) { try SearchRequestWire.decode(badFlag) }
    }
}
