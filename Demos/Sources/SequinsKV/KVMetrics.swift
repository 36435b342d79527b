import DemoSupport
import Metrics
import Synchronization

/// The metrics a `kv` node reports, named in one place (swift-metrics; the process chooses the
/// backend).
final class KVMetrics: Sendable {
    /// The statuses a key request usually ends with, counted without a lock (every request counts).
    private let commonCounters: [Int: Counter] = Dictionary(
        uniqueKeysWithValues: [200, 404, 499, 500, 501, 502, 504].map { ($0, Counter(label: "kv_requests_total", dimensions: [("status", String($0))])) })
    private let requestCounters = Mutex<[Int: Counter]>([:])

    /// Key requests answered, by HTTP status (`kv_requests_total{status="200"}`); one counter per
    /// status, made once (asking the metrics factory on every request costs a lock and a lookup).
    func requests(status: Int) -> Counter {
        if let counter = commonCounters[status] { return counter }
        return requestCounters.withLock { counters in
            if let counter = counters[status] { return counter }
            let counter = Counter(label: "kv_requests_total", dimensions: [("status", String(status))])
            counters[status] = counter
            return counter
        }
    }
    /// Time to answer a key request.
    let requestDuration = Timer(label: "kv_request_duration_seconds")
    /// Key requests answered by a peer.
    let proxied = Counter(label: "kv_proxied_requests_total")
    /// Versions switched to.
    let versionSwitches = Counter(label: "kv_version_switches_total")
    /// Databases served.
    let databases = Gauge(label: "kv_databases")
    /// Time to build a version from the source.
    let loadDuration = Timer(label: "kv_version_load_duration_seconds")
}
