import Synchronization

/// One database on this node: its versions and which one clients get.
public final class Database: Sendable {
    public let name: String
    private let state = Mutex<(lifecycle: VersionLifecycle, versions: [String: Version])>((VersionLifecycle(), [:]))

    init(name: String) {
        self.name = name
    }

    /// The version clients get, if any.
    public var current: Version? {
        state.withLock { state in state.lifecycle.current.flatMap { state.versions[$0] } }
    }

    public var currentName: String? { state.withLock { $0.lifecycle.current } }

    /// The version that answers a peer asking for `version` (`?proxy=`).
    func versionForPeer(asking version: String) -> Version? {
        state.withLock { state in state.lifecycle.versionForPeer(asking: version).flatMap { state.versions[$0] } }
    }

    /// Every version this node has, oldest first.
    public var versions: [Version] {
        state.withLock { state in state.versions.keys.sorted().compactMap { state.versions[$0] } }
    }

    func version(named name: String) -> Version? { state.withLock { $0.versions[name] } }

    /// Adds a prepared version (peers can ask for it from now on).
    func prepare(_ version: Version) {
        state.withLock { state in
            if state.lifecycle.prepare(version.name) { state.versions[version.name] = version }
        }
    }

    func candidates(from sourceVersions: [String]) -> [String] {
        state.withLock { $0.lifecycle.candidates(from: sourceVersions) }
    }

    /// Applies a lifecycle decision and returns the actions for the shell, with their versions.
    func decide(_ decision: (inout VersionLifecycle) -> [VersionLifecycle.Action]) -> [(VersionLifecycle.Action, Version)] {
        state.withLock { state in
            let actions = decision(&state.lifecycle)
            return actions.compactMap { action in
                switch action {
                case .activate(let name), .removeAfterTimeout(let name):
                    return state.versions[name].map { (action, $0) }
                case .removeNow(let name):
                    return state.versions.removeValue(forKey: name).map { (action, $0) }
                }
            }
        }
    }

    /// Forgets every version (the database left the source), returning them for cleanup.
    func removeAll() -> [Version] {
        state.withLock { state in
            defer {
                state.versions = [:]
                state.lifecycle = VersionLifecycle()
            }
            return Array(state.versions.values)
        }
    }
}
