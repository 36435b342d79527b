import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The subtree cache's core against a model tree: whatever the changes, feeding it the reads the
/// cache makes leaves it equal to the tree, and its events, replayed, turn the old view into the
/// new one.
@Suite struct TreeCacheStateTests {
    /// A tree of znodes: path → (data, mzxid).
    struct Model {
        var nodes: [String: (bytes: [UInt8], mzxid: Int64)] = ["/r": ([], 1)]
        var zxid: Int64 = 1

        func children(of path: String) -> [String] {
            nodes.keys.filter { ZooKeeperPath.parent(of: $0) == path }.map { ZooKeeperPath.name(of: $0) }.sorted()
        }

        func data(_ path: String) -> NodeData? {
            nodes[path].map { NodeData(bytes: $0.bytes, stat: Stat(mzxid: $0.mzxid)) }
        }

        mutating func write(_ path: String, _ bytes: [UInt8]) {
            zxid += 1
            nodes[path] = (bytes, zxid)
        }

        mutating func deleteSubtree(_ path: String) {
            for key in nodes.keys where key == path || key.hasPrefix(path + "/") { nodes.removeValue(forKey: key) }
        }

        /// The nodes a cache of depth `maxDepth` sees.
        func visible(maxDepth: Int) -> [String: [UInt8]] {
            let state = TreeCacheState(root: "/r", maxDepth: maxDepth)
            return nodes.filter { state.depth(of: $0.key) <= maxDepth }.mapValues(\.bytes)
        }
    }

    /// Reads `paths` and what is new below them, level by level, as the shell does.
    static func load(_ paths: [String], from model: Model, into state: inout TreeCacheState) -> [TreeCacheEvent] {
        var events: [TreeCacheEvent] = []
        var frontier = paths
        while !frontier.isEmpty {
            var next: [String] = []
            for path in frontier {
                guard let node = model.data(path) else {
                    events += state.nodeMissing(path)
                    continue
                }
                if let event = state.dataRead(node, at: path) { events.append(event) }
                if state.followsChildren(of: path) {
                    let (removed, added) = state.childrenRead(model.children(of: path), at: path)
                    events += removed
                    next += added
                }
            }
            frontier = next
        }
        return events
    }

    /// Replays events over a view.
    static func replay(_ events: [TreeCacheEvent], over view: [String: [UInt8]]) -> [String: [UInt8]] {
        var view = view
        for event in events {
            switch event {
            case .created(let path, let node), .changed(let path, let node): view[path] = node.bytes
            case .deleted(let path, _): view.removeValue(forKey: path)
            case .initialized: break
            }
        }
        return view
    }

    @Test func randomChangesKeepTheCacheEqualToTheTree() {
        var generator = SeededRandomNumberGenerator(seed: 7)
        for _ in 0..<300 {
            let maxDepth = Int.random(in: 1...4, using: &generator)
            var model = Model()
            for _ in 0..<Int.random(in: 0...30, using: &generator) {
                let parent = model.nodes.keys.sorted().randomElement(using: &generator)!
                model.write(parent + "/n\(Int.random(in: 0..<5, using: &generator))", [UInt8.random(in: 0...255, using: &generator)])
            }
            var state = TreeCacheState(root: "/r", maxDepth: maxDepth)
            var view = Self.replay(Self.load(["/r"], from: model, into: &state), over: [:])
            #expect(view == model.visible(maxDepth: maxDepth))
            #expect(state.nodes.mapValues(\.bytes) == view)

            for _ in 0..<40 {
                let existing = model.nodes.keys.sorted()
                let target = existing.randomElement(using: &generator)!
                var events: [TreeCacheEvent] = []
                switch Int.random(in: 0..<3, using: &generator) {
                case 0:  // a data change: the node's data watch fires
                    model.write(target, [UInt8.random(in: 0...255, using: &generator)])
                    events = Self.load([target], from: model, into: &state).filter { $0.path == target }
                case 1:  // a new child: the parent's children watch fires
                    let child = target + "/n\(Int.random(in: 0..<5, using: &generator))"
                    guard model.nodes[child] == nil else { continue }
                    model.write(child, [1])
                    let (removed, added) = state.followsChildren(of: target) && state.nodes[target] != nil
                        ? state.childrenRead(model.children(of: target), at: target) : ([], [])
                    events = removed + Self.load(added, from: model, into: &state)
                default:  // a subtree deleted: its watches fire with the deletion
                    guard target != "/r" else { continue }
                    model.deleteSubtree(target)
                    events = state.nodeMissing(target)
                    if let parent = ZooKeeperPath.parent(of: target), state.nodes[parent] != nil, state.followsChildren(of: parent) {
                        let (removed, added) = state.childrenRead(model.children(of: parent), at: parent)
                        events += removed + Self.load(added, from: model, into: &state)
                    }
                }
                view = Self.replay(events, over: view)
                #expect(view == model.visible(maxDepth: maxDepth))
                #expect(state.nodes.mapValues(\.bytes) == view)
                for event in events {
                    if case .deleted(let path, _) = event { #expect(!view.keys.contains(path)) }
                }
            }
        }
    }

    /// After an expiry the tree is read again: the differences, replayed, turn the old view into
    /// the new one; deletions come deepest first and creations parents first.
    @Test func aResynchronisationReportsExactlyTheDifferences() {
        var generator = SeededRandomNumberGenerator(seed: 8)
        for _ in 0..<300 {
            let maxDepth = Int.random(in: 1...4, using: &generator)
            var model = Model()
            for _ in 0..<Int.random(in: 0...25, using: &generator) {
                let parent = model.nodes.keys.sorted().randomElement(using: &generator)!
                model.write(parent + "/n\(Int.random(in: 0..<4, using: &generator))", [1])
            }
            var old = TreeCacheState(root: "/r", maxDepth: maxDepth)
            _ = Self.load(["/r"], from: model, into: &old)
            for _ in 0..<Int.random(in: 0...10, using: &generator) {  // changes while the session was lost
                let target = model.nodes.keys.sorted().randomElement(using: &generator)!
                if Bool.random(using: &generator) || target == "/r" {
                    model.write(target + (Bool.random(using: &generator) ? "" : "/m\(Int.random(in: 0..<3, using: &generator))"), [2])
                } else {
                    model.deleteSubtree(target)
                }
            }
            var fresh = TreeCacheState(root: "/r", maxDepth: maxDepth)
            _ = Self.load(["/r"], from: model, into: &fresh)
            let events = TreeCacheState.differences(from: old, to: fresh)
            #expect(Self.replay(events, over: old.nodes.mapValues(\.bytes)) == model.visible(maxDepth: maxDepth))
            var seen = Set(old.nodes.keys)
            for event in events {
                switch event {
                case .deleted(let path, _):
                    #expect(!seen.contains { $0.hasPrefix(path + "/") }, "children are deleted before their parent")
                    seen.remove(path)
                case .created(let path, _):
                    if path != "/r" { #expect(seen.contains(ZooKeeperPath.parent(of: path)!), "parents are created first") }
                    seen.insert(path)
                default: break
                }
            }
            let unchanged = TreeCacheState.differences(from: fresh, to: fresh)
            #expect(unchanged.isEmpty)
        }
    }
}
