import DemoSupport
import Metrics

/// The metrics a `replicated` node reports (swift-metrics; the process chooses the backend).
struct ReplicatedMetrics: Sendable {
    /// Operations this node committed as coordinator, the time each round took (lock to
    /// acknowledgement), and how many operations each round carried.
    let commits = Counter(label: "replicated_commits_total")
    let commitDuration = Timer(label: "replicated_commit_round_duration_seconds")
    let roundSize = Recorder(label: "replicated_commit_round_size")
    /// Operations this node aborted as coordinator.
    let aborts = Counter(label: "replicated_aborts_total")
    /// Members this node expelled as coordinator.
    let expelled = Counter(label: "replicated_expelled_members_total")
    /// Join attempts, and databases copied from members while joining.
    let joinAttempts = Counter(label: "replicated_join_attempts_total")
    let databasesCopied = Counter(label: "replicated_databases_copied_total")
    /// Times this node lost its membership (expelled, or its session ended).
    let membershipLost = Counter(label: "replicated_membership_lost_total")
}
