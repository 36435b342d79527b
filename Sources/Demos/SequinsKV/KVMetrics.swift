import Metrics

/// The metrics a `kv` node reports, named in one place (swift-metrics; the process chooses the
/// backend).
struct KVMetrics: Sendable {
    /// Key requests answered, by HTTP status (`kv_requests_total{status="200"}`).
    func requests(status: Int) -> Counter { Counter(label: "kv_requests_total", dimensions: [("status", String(status))]) }
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
