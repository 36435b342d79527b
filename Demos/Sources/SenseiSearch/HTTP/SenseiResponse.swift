import Foundation

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

    public static func data(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
