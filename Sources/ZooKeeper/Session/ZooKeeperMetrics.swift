import Metrics

/// The one place that names this module's metrics (swift-metrics; a no-op unless the application
/// bootstraps a backend).
enum ZooKeeperMetrics {
    /// Session state transitions, dimension `state`.
    static func sessionStateChanged(to state: SessionState) {
        let name: String
        switch state {
        case .connecting: name = "connecting"
        case .connected: name = "connected"
        case .suspended: name = "suspended"
        case .presumedExpired: name = "presumed_expired"
        case .expired: name = "expired"
        case .newSession: name = "new_session"
        case .readOnly: name = "read_only"
        case .authFailed: name = "auth_failed"
        case .closed: name = "closed"
        }
        Counter(label: "zookeeper_session_transitions_total", dimensions: [("state", name)]).increment()
    }
}
