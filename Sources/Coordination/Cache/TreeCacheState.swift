import ZooKeeper

/// One change a ``TreeCache`` reports.
public enum TreeCacheEvent: Sendable, Hashable {
    /// A node appeared (or was there when the cache started), with its data.
    case created(path: String, node: NodeData)
    /// A node's data changed (a write, even of the same bytes: its `mzxid` moved).
    case changed(path: String, node: NodeData)
    /// A node went, with the data it had last.
    case deleted(path: String, node: NodeData)
    /// Everything that was there when the cache started has been reported.
    case initialized

    /// The node's path (`nil` for ``initialized``).
    public var path: String? {
        switch self {
        case .created(let path, _), .changed(let path, _), .deleted(let path, _): return path
        case .initialized: return nil
        }
    }
}

/// What a subtree cache knows (every node's data, and the children of the nodes it follows the
/// children of) and the events that each read turns into. Pure: reads in, events out.
struct TreeCacheState: Sendable {
    let root: String
    /// How deep below the root children are followed: the root is at depth 0, its children at 1.
    let maxDepth: Int
    private(set) var nodes: [String: NodeData] = [:]
    /// The children names of the nodes whose children have been read.
    private(set) var children: [String: Set<String>] = [:]

    init(root: String, maxDepth: Int) {
        self.root = root
        self.maxDepth = maxDepth
    }

    /// The depth of `path` below the root (0 for the root).
    func depth(of path: String) -> Int {
        guard path != root else { return 0 }
        let rest = root == "/" ? path.dropFirst() : path.dropFirst(root.count + 1)
        return rest.split(separator: "/", omittingEmptySubsequences: false).count
    }

    /// Whether the children of `path` are followed.
    func followsChildren(of path: String) -> Bool {
        depth(of: path) < maxDepth
    }

    /// Whether `path` belongs to the tree as known: the root, or a child its parent's last
    /// children read listed.
    func isWanted(_ path: String) -> Bool {
        if path == root { return true }
        guard let parent = ZooKeeperPath.parent(of: path), let names = children[parent] else { return false }
        return names.contains(ZooKeeperPath.name(of: path))
    }

    /// Records the data read at `path`: a new node is created, a known one changed if its
    /// `mzxid` moved; a node the tree no longer lists is ignored.
    mutating func dataRead(_ node: NodeData, at path: String) -> TreeCacheEvent? {
        guard isWanted(path) else { return nil }
        if let known = nodes[path] {
            guard known.stat.mzxid != node.stat.mzxid || known.bytes != node.bytes else { return nil }
            nodes[path] = node
            return .changed(path: path, node: node)
        }
        nodes[path] = node
        return .created(path: path, node: node)
    }

    /// Records the children read at `path`: children no longer listed are deleted with their
    /// subtrees (deepest first); the paths of new children, to read, are returned in order.
    mutating func childrenRead(_ names: [String], at path: String) -> (events: [TreeCacheEvent], added: [String]) {
        guard nodes[path] != nil, followsChildren(of: path) else { return ([], []) }
        let now = Set(names)
        let before = children[path] ?? []
        children[path] = now
        var events: [TreeCacheEvent] = []
        for gone in before.subtracting(now).sorted() {
            events += removeSubtree(ZooKeeperPath.join(path, gone))
        }
        let added = now.subtracting(before).sorted().map { ZooKeeperPath.join(path, $0) }
        return (events, added)
    }

    /// Records that `path` does not exist (any more): it and its subtree are deleted, and its
    /// parent no longer lists it.
    mutating func nodeMissing(_ path: String) -> [TreeCacheEvent] {
        if let parent = ZooKeeperPath.parent(of: path), path != root {
            children[parent]?.remove(ZooKeeperPath.name(of: path))
        }
        return removeSubtree(path)
    }

    /// Deletes `path` and what is below it, deepest first.
    private mutating func removeSubtree(_ path: String) -> [TreeCacheEvent] {
        var events: [TreeCacheEvent] = []
        for name in (children.removeValue(forKey: path) ?? []).sorted() {
            events += removeSubtree(ZooKeeperPath.join(path, name))
        }
        if let node = nodes.removeValue(forKey: path) {
            events.append(.deleted(path: path, node: node))
        }
        return events
    }

    /// What turns the tree `old` into `new` (after a resynchronisation): deletions deepest first,
    /// then creations parents first, then changes.
    static func differences(from old: TreeCacheState, to new: TreeCacheState) -> [TreeCacheEvent] {
        func byDepth(_ paths: some Sequence<String>, deepestFirst: Bool) -> [String] {
            paths.sorted { left, right in
                let (l, r) = (left.split(separator: "/").count, right.split(separator: "/").count)
                if l != r { return deepestFirst ? l > r : l < r }
                return left < right
            }
        }
        var events: [TreeCacheEvent] = []
        for path in byDepth(old.nodes.keys.filter { new.nodes[$0] == nil }, deepestFirst: true) {
            events.append(.deleted(path: path, node: old.nodes[path]!))
        }
        for path in byDepth(new.nodes.keys.filter { old.nodes[$0] == nil }, deepestFirst: false) {
            events.append(.created(path: path, node: new.nodes[path]!))
        }
        for path in new.nodes.keys.sorted() {
            if let before = old.nodes[path], let after = new.nodes[path], before.stat.mzxid != after.stat.mzxid || before.bytes != after.bytes {
                events.append(.changed(path: path, node: after))
            }
        }
        return events
    }

    /// The nodes as creation events, parents first (for a subscriber that arrives late).
    var creations: [TreeCacheEvent] {
        TreeCacheState.differences(from: TreeCacheState(root: root, maxDepth: maxDepth), to: self)
    }
}
