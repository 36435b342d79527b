import Coordination
import Logging
import ZooKeeper

/// What the parts of a node share: its identity and settings, its ZooKeeper session, the
/// cluster's znodes and lock, its local store and the calls to its peers.
struct NodeContext: Sendable {
    /// This node's id in the cluster: its address.
    let id: String
    let configuration: StardogConfiguration
    let logger: Logger
    let client: ZooKeeperClient
    let layout: ClusterLayout
    /// The cluster lock: commit rounds, joins and admin operations take it.
    let lock: DistributedLock
    let store: LocalStore
    let peers: PeerCalls
    let metrics: ReplicatedMetrics
}
