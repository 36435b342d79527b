import DemoSupport
import NIOCore

/// The binary form of a ``SearchRequest`` on its way from a broker to a node (`/node/search` with
/// `Content-Type: application/x-search-request`): every field in declaration order, no field
/// names, nothing to parse. A node still takes the request as JSON (any other content type), as
/// tools and older brokers send it. Decoding a request took a node 30–80 µs as JSON
/// (`search.decode_us` in its stage log), about a tenth of what a hop to a node costs beyond the
/// search.
///
/// A field added to ``SearchRequest`` must be added here, and the layout's version bumped.
enum SearchRequestWire {
    static let contentType = "application/x-search-request"
    /// Bumped when the layout changes: a node and a broker of different layouts refuse each other.
    static let version: UInt8 = 1

    static func encode(_ request: SearchRequest) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 128 + request.query.utf8.count)
        buffer.writeInteger(version)
        buffer.writeWireString(request.query)
        writeStrings(request.defaultFields, to: &buffer)
        buffer.writeWireFlag(request.defaultOperator == .and)
        buffer.writeInteger(Int64(request.from))
        buffer.writeInteger(Int64(request.size))
        for selections in [request.selections, request.filters] {
            buffer.writeInteger(UInt32(selections.count))
            for selection in selections { write(selection, to: &buffer) }
        }
        buffer.writeInteger(UInt32(request.facets.count))
        for (name, facet) in request.facets {
            buffer.writeWireString(name)
            buffer.writeInteger(Int64(facet.max))
            buffer.writeInteger(Int64(facet.minCount))
            buffer.writeWireFlag(facet.order == .val)
            buffer.writeWireFlag(facet.expand)
        }
        buffer.writeInteger(UInt32(request.sort.count))
        for field in request.sort {
            buffer.writeWireString(field.field)
            buffer.writeWireFlag(field.descending)
        }
        buffer.writeWireFlag(request.routeParam != nil)
        if let routeParam = request.routeParam { buffer.writeWireString(routeParam) }
        buffer.writeWireFlag(request.fetchStored)
        buffer.writeWireFlag(request.partitions != nil)
        if let partitions = request.partitions {
            buffer.writeInteger(UInt32(partitions.count))
            for partition in partitions { buffer.writeInteger(Int64(partition)) }
        }
        return buffer
    }

    /// - Throws: ``RequestError`` naming what is wrong when the bytes are not one request.
    static func decode(_ buffer: ByteBuffer) throws -> SearchRequest {
        var reader = try WireReader(buffer, what: "a broker's search request", version: version, failure: { RequestError($0) })
        var request = SearchRequest()
        request.query = try reader.string()
        request.defaultFields = try strings(from: &reader)
        request.defaultOperator = try reader.flag() ? .and : .or
        request.from = Int(try reader.integer(Int64.self))
        request.size = Int(try reader.integer(Int64.self))
        request.selections = try (0..<reader.count()).map { _ in try selection(from: &reader) }
        request.filters = try (0..<reader.count()).map { _ in try selection(from: &reader) }
        for _ in 0..<(try reader.count()) {
            let name = try reader.string()
            let max = Int(try reader.integer(Int64.self))
            let minCount = Int(try reader.integer(Int64.self))
            let order: SearchRequest.FacetSpec.Order = try reader.flag() ? .val : .hits
            request.facets[name] = SearchRequest.FacetSpec(max: max, minCount: minCount, order: order, expand: try reader.flag())
        }
        request.sort = try (0..<reader.count()).map { _ in SearchRequest.SortField(field: try reader.string(), descending: try reader.flag()) }
        request.routeParam = try reader.flag() ? try reader.string() : nil
        request.fetchStored = try reader.flag()
        if try reader.flag() {
            request.partitions = try (0..<reader.count()).map { _ in Int(try reader.integer(Int64.self)) }
        }
        try reader.end()
        return request
    }

    private static func write(_ selection: SearchRequest.Selection, to buffer: inout ByteBuffer) {
        buffer.writeWireString(selection.field)
        writeStrings(selection.values, to: &buffer)
        writeStrings(selection.excludes, to: &buffer)
        buffer.writeWireFlag(selection.operator == .and)
        buffer.writeWireFlag(selection.range != nil)
        if let range = selection.range {
            for bound in [range.low, range.high] {
                buffer.writeWireFlag(bound != nil)
                if let bound { buffer.writeInteger(bound.bitPattern) }
            }
            buffer.writeWireFlag(range.includeLow)
            buffer.writeWireFlag(range.includeHigh)
        }
    }

    private static func selection(from reader: inout WireReader) throws -> SearchRequest.Selection {
        let field = try reader.string()
        let values = try strings(from: &reader)
        let excludes = try strings(from: &reader)
        let op: SearchRequest.Selection.Operator = try reader.flag() ? .and : .or
        var range: SearchRequest.NumericRange?
        if try reader.flag() {
            let low = try reader.flag() ? Double(bitPattern: try reader.integer(UInt64.self)) : nil
            let high = try reader.flag() ? Double(bitPattern: try reader.integer(UInt64.self)) : nil
            range = SearchRequest.NumericRange(low: low, high: high, includeLow: try reader.flag(), includeHigh: try reader.flag())
        }
        return SearchRequest.Selection(field: field, values: values, excludes: excludes, operator: op, range: range)
    }

    private static func writeStrings(_ strings: [String], to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(strings.count))
        for string in strings { buffer.writeWireString(string) }
    }

    private static func strings(from reader: inout WireReader) throws -> [String] {
        try (0..<reader.count()).map { _ in try reader.string() }
    }
}
