import DemoSupport
import NIOCore

/// The binary form of a node's ``SearchResult`` on its way to a broker (`/node/search` answers
/// `application/x-search-result`): lengths and values in order, no field names, nothing to
/// parse. Between our own nodes only (Sensei's nodes and brokers spoke their own internal
/// protocol too); Sensei's JSON API at the broker is unchanged. Encoding and decoding a result of
/// ten hits costs microseconds where JSON cost a few hundred (measured in the broker's stage log).
enum SearchResultWire {
    static let contentType = "application/x-search-result"
    /// Bumped when the layout changes: a node and a broker of different layouts refuse each other.
    static let version: UInt8 = 1

    static func encode(_ result: SearchResult) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256 + result.hits.count * 64)
        buffer.writeInteger(version)
        buffer.writeInteger(Int64(result.numhits))
        buffer.writeInteger(Int64(result.totaldocs))
        buffer.writeInteger(UInt32(result.hits.count))
        for hit in result.hits {
            buffer.writeWireString(hit.uid)
            buffer.writeInteger(hit.score.bitPattern)
            buffer.writeInteger(UInt32(hit.sortValues.count))
            for value in hit.sortValues {
                switch value {
                case .number(let number):
                    buffer.writeInteger(UInt8(0))
                    buffer.writeInteger(number.bitPattern)
                case .text(let text):
                    buffer.writeInteger(UInt8(1))
                    buffer.writeWireString(text)
                case .missing:
                    buffer.writeInteger(UInt8(2))
                }
            }
            buffer.writeInteger(UInt32(hit.stored.count))
            for (name, values) in hit.stored {
                buffer.writeWireString(name)
                buffer.writeInteger(UInt32(values.count))
                for value in values { buffer.writeWireString(value) }
            }
            buffer.writeWireFlag(hit.source != nil)
            if let source = hit.source { buffer.writeWireString(source) }
        }
        buffer.writeInteger(UInt32(result.facets.count))
        for (name, counts) in result.facets {
            buffer.writeWireString(name)
            buffer.writeInteger(UInt32(counts.count))
            for count in counts {
                buffer.writeWireString(count.value)
                buffer.writeInteger(Int64(count.count))
                buffer.writeWireFlag(count.selected)
            }
        }
        buffer.writeInteger(UInt32(result.errors.count))
        for error in result.errors {
            buffer.writeWireString(error.errorType)
            buffer.writeWireString(error.message)
            buffer.writeInteger(Int64(error.errorCode))
        }
        return buffer
    }

    /// - Parameter sortFields: how many sort values every hit must carry (the request's sort
    ///   fields), when known: merging compares hits by them.
    /// - Throws: ``RequestError`` naming what is wrong when the bytes are not one result.
    static func decode(_ buffer: ByteBuffer, sortFields: Int? = nil) throws -> SearchResult {
        var reader = try WireReader(buffer, what: "a node's result", version: version, failure: { RequestError($0) })
        var result = SearchResult()
        result.numhits = try reader.tally("hits")
        result.totaldocs = try reader.tally("documents")
        // A hit takes at least its uid's length, score, sort value count, stored count and flag.
        let hitCount = try reader.count(entryBytes: 17)
        result.hits.reserveCapacity(hitCount)
        for _ in 0..<hitCount {
            let uid = try reader.string()
            let score = Float(bitPattern: try reader.integer(UInt32.self))
            var sortValues: [SearchResult.SortValue] = []
            let sortCount = try reader.count()
            if let sortFields, sortCount != sortFields {
                throw RequestError("a node's result has a hit with \(sortCount) sort values for \(sortFields) sort fields")
            }
            for _ in 0..<sortCount {
                switch try reader.integer(UInt8.self) {
                case 0: sortValues.append(.number(Double(bitPattern: try reader.integer(UInt64.self))))
                case 1: sortValues.append(.text(try reader.string()))
                case 2: sortValues.append(.missing)
                case let tag: throw RequestError("a node's result has a sort value of unknown kind \(tag)")
                }
            }
            var stored: [String: [String]] = [:]
            for _ in 0..<(try reader.count()) {
                let name = try reader.string()
                var values: [String] = []
                for _ in 0..<(try reader.count()) { values.append(try reader.string()) }
                stored[name] = values
            }
            let source = try reader.flag() ? try reader.string() : nil
            result.hits.append(SearchResult.Hit(uid: uid, score: score, sortValues: sortValues, stored: stored, source: source))
        }
        for _ in 0..<(try reader.count()) {
            let name = try reader.string()
            var counts: [SearchResult.FacetCount] = []
            for _ in 0..<(try reader.count()) {
                let value = try reader.string()
                let number = try reader.tally("as a facet count")
                counts.append(SearchResult.FacetCount(value: value, count: number, selected: try reader.flag()))
            }
            result.facets[name] = counts
        }
        for _ in 0..<(try reader.count()) {
            let type = try reader.string()
            let message = try reader.string()
            result.errors.append(SearchResult.SearchError(errorType: type, message: message, errorCode: Int(try reader.integer(Int64.self))))
        }
        try reader.end()
        return result
    }
}
