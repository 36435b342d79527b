import Crypto
import CZooKeeper
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One access-control entry: who (`scheme`:`id`) may do what (``Permissions``).
public struct ACL: Sendable, Hashable, CustomStringConvertible {
    /// What an ACL entry allows.
    public struct Permissions: OptionSet, Sendable, Hashable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// Read the data and list the children.
        public static let read = Permissions(rawValue: ZOO_PERM_READ)
        /// Set the data.
        public static let write = Permissions(rawValue: ZOO_PERM_WRITE)
        /// Create children.
        public static let create = Permissions(rawValue: ZOO_PERM_CREATE)
        /// Delete children.
        public static let delete = Permissions(rawValue: ZOO_PERM_DELETE)
        /// Set the ACL.
        public static let admin = Permissions(rawValue: ZOO_PERM_ADMIN)
        /// Everything.
        public static let all = Permissions(rawValue: ZOO_PERM_ALL)
    }

    /// What the identity may do.
    public var permissions: Permissions
    /// The scheme: `world`, `auth`, `digest`, `ip`, …
    public var scheme: String
    /// The identity within the scheme.
    public var id: String

    /// An entry giving `permissions` to `id` of `scheme`.
    public init(permissions: Permissions, scheme: String, id: String) {
        self.permissions = permissions
        self.scheme = scheme
        self.id = id
    }

    public var description: String { "\(scheme):\(id):\(permissions.rawValue)" }

    /// Anyone may do anything (`world:anyone`, all permissions).
    public static let openUnsafe: [ACL] = [ACL(permissions: .all, scheme: "world", id: "anyone")]
    /// Anyone may read.
    public static let readUnsafe: [ACL] = [ACL(permissions: .read, scheme: "world", id: "anyone")]
    /// All permissions for the identities the creating session authenticated with.
    public static let creatorAll: [ACL] = [ACL(permissions: .all, scheme: "auth", id: "")]

    /// A `digest` entry for `user` with `password`: the id is `user:base64(sha1("user:password"))`,
    /// as the server computes it for a session that called `addAuth("digest", "user:password")`.
    public static func digest(user: String, password: String, permissions: Permissions = .all) -> ACL {
        ACL(permissions: permissions, scheme: "digest", id: digestID(user: user, password: password))
    }

    /// The digest id the server stores for `user:password`.
    public static func digestID(user: String, password: String) -> String {
        let hash = Insecure.SHA1.hash(data: Array("\(user):\(password)".utf8))
        return "\(user):\(Data(hash).base64EncodedString())"
    }
}

/// Converts `[ACL]` to a C `ACL_vector` valid for the duration of `body`.
func withCACLVector<R>(_ acls: [ACL], _ body: (UnsafePointer<ACL_vector>) throws -> R) rethrows -> R {
    let count = acls.count
    let entries = UnsafeMutablePointer<CZooKeeper.ACL>.allocate(capacity: max(count, 1))
    var strings: [UnsafeMutablePointer<CChar>] = []
    strings.reserveCapacity(count * 2)
    defer {
        for string in strings { free(string) }
        entries.deallocate()
    }
    for (index, acl) in acls.enumerated() {
        let scheme = strdup(acl.scheme)!
        let id = strdup(acl.id)!
        strings.append(scheme)
        strings.append(id)
        entries[index] = CZooKeeper.ACL(perms: acl.permissions.rawValue, id: Id(scheme: scheme, id: id))
    }
    var vector = ACL_vector(count: Int32(count), data: entries)
    return try withUnsafePointer(to: &vector) { try body($0) }
}

extension ACL {
    init(_ c: CZooKeeper.ACL) {
        self.init(
            permissions: Permissions(rawValue: c.perms),
            scheme: c.id.scheme.map { String(cString: $0) } ?? "",
            id: c.id.id.map { String(cString: $0) } ?? ""
        )
    }

    static func array(from vector: UnsafePointer<ACL_vector>?) -> [ACL] {
        guard let vector, let data = vector.pointee.data else { return [] }
        return (0..<Int(vector.pointee.count)).map { ACL(data[$0]) }
    }
}
