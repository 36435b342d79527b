import Foundation
import NIOCore

/// Sensei's response JSON: `tid`, `totaldocs`, `numhits`, `numgroups`, `time`, `parsedquery`,
/// `errors` (`errorCode`, `message`, `errorType`), `hits` (`_uid`, `_score`, `_srcdata` with
/// `fetchStored`, and each stored column as an array of strings), `facets` (`value`, `count`,
/// `selected`).
public enum SenseiResponse {
    public static func object(_ result: SearchResult, request: SearchRequest, milliseconds: Int) -> [String: Any] {
        let hits: [[String: Any]] = result.hits.map { hit in
            var object: [String: Any] = ["_uid": Int64(hit.uid).map { $0 as Any } ?? hit.uid, "_score": Double(hit.score)]
            for (name, values) in hit.stored { object[name] = values }
            if let source = hit.source { object["_srcdata"] = source }
            return object
        }
        var facets: [String: Any] = [:]
        for (name, counts) in result.facets {
            facets[name] = counts.map { ["value": $0.value, "count": $0.count, "selected": $0.selected] as [String: Any] }
        }
        return [
            "tid": Int.random(in: 0..<Int(Int32.max)), "totaldocs": result.totaldocs, "numhits": result.numhits,
            "numgroups": result.numhits, "time": milliseconds, "parsedquery": request.query,
            "errors": result.errors.map { ["errorCode": $0.errorCode, "message": $0.message, "errorType": $0.errorType] as [String: Any] },
            "hits": hits, "facets": facets,
        ]
    }

    /// The same document as ``object(_:request:milliseconds:)`` serialised by
    /// `JSONSerialization` with sorted keys, written directly: a search's answer is the broker's
    /// hottest path, and building the dictionaries and serialising them cost about half a
    /// millisecond per query.
    public static func json(_ result: SearchResult, request: SearchRequest, milliseconds: Int) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: 512 + result.hits.count * 128)
        out.writeStaticString("{\"errors\":[")
        for (index, error) in result.errors.enumerated() {
            if index > 0 { out.writeStaticString(",") }
            out.writeString("{\"errorCode\":\(error.errorCode),\"errorType\":")
            writeQuoted(error.errorType, to: &out)
            out.writeStaticString(",\"message\":")
            writeQuoted(error.message, to: &out)
            out.writeStaticString("}")
        }
        out.writeStaticString("],\"facets\":{")
        for (index, name) in result.facets.keys.sorted().enumerated() {
            if index > 0 { out.writeStaticString(",") }
            writeQuoted(name, to: &out)
            out.writeStaticString(":[")
            for (position, count) in result.facets[name]!.enumerated() {
                if position > 0 { out.writeStaticString(",") }
                out.writeString("{\"count\":\(count.count),\"selected\":\(count.selected),\"value\":")
                writeQuoted(count.value, to: &out)
                out.writeStaticString("}")
            }
            out.writeStaticString("]")
        }
        out.writeStaticString("},\"hits\":[")
        for (index, hit) in result.hits.enumerated() {
            if index > 0 { out.writeStaticString(",") }
            // The hit's keys in sorted order: _score, _srcdata, _uid and the stored columns together.
            var keys = Array(hit.stored.keys)
            keys.append("_score")
            keys.append("_uid")
            if hit.source != nil { keys.append("_srcdata") }
            keys.sort()
            out.writeStaticString("{")
            for (position, key) in keys.enumerated() {
                if position > 0 { out.writeStaticString(",") }
                writeQuoted(key, to: &out)
                out.writeStaticString(":")
                switch key {
                case "_score": out.writeString(hit.score.isFinite ? "\(Double(hit.score))" : "0")
                case "_uid":
                    if let number = Int64(hit.uid) { out.writeString("\(number)") } else { writeQuoted(hit.uid, to: &out) }
                case "_srcdata": writeQuoted(hit.source!, to: &out)
                default:
                    out.writeStaticString("[")
                    for (valueIndex, value) in hit.stored[key]!.enumerated() {
                        if valueIndex > 0 { out.writeStaticString(",") }
                        writeQuoted(value, to: &out)
                    }
                    out.writeStaticString("]")
                }
            }
            out.writeStaticString("}")
        }
        out.writeString("],\"numgroups\":\(result.numhits),\"numhits\":\(result.numhits),\"parsedquery\":")
        writeQuoted(request.query, to: &out)
        out.writeString(",\"tid\":\(Int.random(in: 0..<Int(Int32.max))),\"time\":\(milliseconds),\"totaldocs\":\(result.totaldocs)}")
        return out
    }

    /// `text` as a JSON string (escaped as `JSONSerialization` escapes: `"`, `\\`, `/` and
    /// control characters).
    static func writeQuoted(_ text: String, to out: inout ByteBuffer) {
        out.writeStaticString("\"")
        var start = text.utf8.startIndex
        let bytes = text.utf8
        var index = start
        while index != bytes.endIndex {
            let byte = bytes[index]
            let escape: String?
            switch byte {
            case UInt8(ascii: "\""): escape = "\\\""
            case UInt8(ascii: "\\"): escape = "\\\\"
            case UInt8(ascii: "/"): escape = "\\/"
            case 0x0A: escape = "\\n"
            case 0x0D: escape = "\\r"
            case 0x09: escape = "\\t"
            case 0x08: escape = "\\b"
            case 0x0C: escape = "\\f"
            case 0..<0x20: escape = String(format: "\\u%04x", byte)
            default: escape = nil
            }
            if let escape {
                out.writeBytes(bytes[start..<index])
                out.writeString(escape)
                start = bytes.index(after: index)
            }
            index = bytes.index(after: index)
        }
        out.writeBytes(bytes[start..<bytes.endIndex])
        out.writeStaticString("\"")
    }

    public static func data(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
