/// The queue of contenders under a lock, election or semaphore node, and the decision a
/// contender takes from it. Pure: children names in, a decision out.
///
/// Contender nodes are named `_c_<guid>-<kind>-<10-digit sequence>` (the GUID makes a create whose
/// reply was lost findable again; the server appends the sequence). They are ordered by sequence
/// only, whatever their prefix.
package enum LockQueue {
    package typealias Kind = DistributedLock.Kind

    /// One node of the queue.
    package struct Contender: Sendable, Hashable {
        package var name: String
        package var sequence: Int64
        package var kind: Kind
        /// The protection GUID in the name, if it has one.
        package var guid: String?
    }

    /// What a contender does next.
    package enum Decision: Sendable, Hashable {
        /// It holds the lock (or one of the leases).
        case acquired
        /// It waits for this node (the one that blocks it and was created just before it) to go.
        case wait(for: String)
        /// Its own node is not in the queue (deleted, or its session expired).
        case missing
    }

    /// Parses a contender node name; `nil` for a name that is not a contender of this library.
    package static func parse(_ name: String) -> Contender? {
        // …-<kind>-<sequence>, the sequence being the server's 10 digits (negative after a wrap).
        guard let lastDash = name.lastIndex(of: "-") else { return nil }
        var sequenceStart = name.index(after: lastDash)
        var kindEnd = lastDash
        if sequenceStart == name.endIndex {
            return nil
        }
        // A wrapped counter looks like "lock--2147483647": the sign belongs to the number.
        if lastDash > name.startIndex, name[name.index(before: lastDash)] == "-" {
            sequenceStart = lastDash
            kindEnd = name.index(before: lastDash)
        }
        guard let sequence = Int64(name[sequenceStart...]) else { return nil }
        let head = name[..<kindEnd]
        let kindStart = head.lastIndex(of: "-").map { head.index(after: $0) } ?? head.startIndex
        guard let kind = Kind(nodeName: head[kindStart...]) else { return nil }
        var guid: String?
        if head.hasPrefix("_c_"), kindStart > head.startIndex {
            guid = String(head[head.index(head.startIndex, offsetBy: 3)..<head.index(before: kindStart)])
        }
        return Contender(name: name, sequence: sequence, kind: kind, guid: guid)
    }

    /// The contenders among `children`, in queue order.
    package static func queue(_ children: [String]) -> [Contender] {
        children.compactMap(parse).sorted { ($0.sequence, $0.name) < ($1.sequence, $1.name) }
    }

    /// Decides for the contender named `ours`.
    /// - Parameter maxHolders: how many exclusive contenders may hold at once (1 for a mutex or an
    ///   election, N for a semaphore). Readers and writers ignore it.
    package static func decide(children: [String], ours: String, maxHolders: Int = 1) -> Decision {
        let queue = queue(children)
        guard let index = queue.firstIndex(where: { $0.name == ours }) else { return .missing }
        let me = queue[index]
        switch me.kind {
        case .exclusive:
            let ahead = queue[..<index].filter { $0.kind == .exclusive }
            if ahead.count < maxHolders { return .acquired }
            // Watch the node whose departure could let us in: maxHolders places ahead.
            return .wait(for: ahead[ahead.count - maxHolders].name)
        case .write:
            guard let predecessor = queue[..<index].last(where: { $0.kind != .exclusive }) else { return .acquired }
            return .wait(for: predecessor.name)
        case .read:
            guard let writer = queue[..<index].last(where: { $0.kind == .write }) else { return .acquired }
            return .wait(for: writer.name)
        }
    }

    /// The node name prefix for a contender (the server appends the sequence).
    package static func prefix(guid: String, kind: Kind) -> String {
        "_c_\(guid)-\(kind.nodeName)-"
    }

    /// The contender created with `guid`, if it is among `children` (to recover a create whose
    /// reply was lost).
    package static func find(guid: String, in children: [String]) -> String? {
        children.first { parse($0)?.guid == guid }
    }
}

extension DistributedLock.Kind {
    /// The kind's word in a contender node's name.
    var nodeName: String {
        switch self {
        case .exclusive: return "lock"
        case .read: return "read"
        case .write: return "write"
        }
    }

    init?(nodeName: Substring) {
        switch nodeName {
        case "lock": self = .exclusive
        case "read": self = .read
        case "write": self = .write
        default: return nil
        }
    }
}
