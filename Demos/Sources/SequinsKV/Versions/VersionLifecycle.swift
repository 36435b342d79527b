/// Which versions of one database a node serves, and what to do when one becomes ready: the
/// decisions of sequins' version mux, as a pure value (the shell carries out the actions).
///
/// - A prepared version can be served to peers that ask for it (`?proxy=<version>`), not to clients.
/// - ``upgrade(to:)`` switches clients to a version only if it is newer than the current one
///   (never a downgrade); the previous current version is kept for peers until a removal timeout
///   (when `keepPrevious`), older prepared versions are removed at once.
public struct VersionLifecycle: Sendable, Hashable {
    public private(set) var current: String?
    /// Versions this node has (prepared, building, serving or being removed).
    public private(set) var prepared: Set<String> = []
    /// Versions waiting out their removal timeout.
    public private(set) var removing: Set<String> = []

    public enum Action: Sendable, Hashable {
        /// Make `version` the one clients get.
        case activate(String)
        /// Mark `version` as removing and drop it after the removal timeout (reset by every use).
        case removeAfterTimeout(String)
        /// Drop `version` now: unadvertise it and delete its local files.
        case removeNow(String)
    }

    public init() {}

    /// Records that `version` exists here. Returns false if it was already prepared.
    public mutating func prepare(_ version: String) -> Bool {
        prepared.insert(version).inserted
    }

    /// The version that serves a peer's `?proxy=<version>` request: that version if prepared and
    /// not being dropped, else the current one, else none (sequins answers 501 then).
    public func versionForPeer(asking version: String) -> String? {
        prepared.contains(version) ? version : current
    }

    /// `version` is ready: switch to it if it is newer than the current one.
    public mutating func upgrade(to version: String, keepPrevious: Bool) -> [Action] {
        guard prepared.contains(version), !removing.contains(version) else { return [] }
        if let current {
            if version == current { return [] }
            if version < current {
                prepared.remove(version)
                return [.removeNow(version)]
            }
        }
        var actions: [Action] = [.activate(version)]
        let previous = current
        current = version
        for other in prepared.sorted() where other < version && !removing.contains(other) {
            if other == previous && keepPrevious {
                removing.insert(other)
                actions.append(.removeAfterTimeout(other))
            } else {
                prepared.remove(other)
                actions.append(.removeNow(other))
            }
        }
        return actions
    }

    /// The removal timeout of `version` fired: forget it.
    public mutating func removalTimedOut(_ version: String) -> [Action] {
        guard removing.remove(version) != nil else { return [] }
        prepared.remove(version)
        return [.removeNow(version)]
    }

    /// The versions a refresh should consider from the source's list: those newer than the
    /// current one (never a downgrade), greatest first.
    public func candidates(from sourceVersions: [String]) -> [String] {
        sourceVersions.filter { version in current.map { version > $0 } ?? true }.sorted(by: >)
    }
}
