/// Validation and manipulation of ZooKeeper paths, with the server's rules
/// (`org.apache.zookeeper.common.PathUtils`), so a bad path fails before anything is sent.
public enum ZooKeeperPath {
    /// Throws `.invalidPath` naming the problem if `path` is not a valid node path.
    /// - Parameters:
    ///   - path: the path to check.
    ///   - isSequential: a sequential create may end in `/` (the server appends the suffix).
    public static func validate(_ path: String, isSequential: Bool = false) throws(ZooKeeperError) {
        if let problem = problem(in: isSequential ? path + "1" : path) {
            throw ZooKeeperError(.invalidPath, path: path, message: "invalid path \"\(path)\": \(problem)")
        }
    }

    /// The reason `path` is invalid, or `nil`.
    public static func problem(in path: String) -> String? {
        if isValidPrintableASCII(path) { return nil }
        return problemInScalars(of: path)
    }

    /// The common case without allocating: printable ASCII, absolute, no empty, `.` or `..` names.
    /// `false` means "not proven valid here", not "invalid".
    @inline(__always)
    static func isValidPrintableASCII(_ path: String) -> Bool {
        var utf8 = path.utf8.makeIterator()
        guard utf8.next() == UInt8(ascii: "/") else { return false }
        var componentLength = 0
        var dots = 0
        var sawAny = false
        while let byte = utf8.next() {
            sawAny = true
            guard byte >= 0x20 && byte < 0x7F else { return false }
            if byte == UInt8(ascii: "/") {
                if componentLength == 0 || componentLength == dots && dots <= 2 { return false }
                componentLength = 0
                dots = 0
            } else {
                componentLength += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
        }
        if !sawAny { return true }  // "/"
        return componentLength > 0 && !(componentLength == dots && dots <= 2)
    }

    static func problemInScalars(of path: String) -> String? {
        guard let first = path.unicodeScalars.first else { return "the path is empty" }
        if first != "/" { return "the path must start with /" }
        if path == "/" { return nil }
        if path.hasSuffix("/") { return "the path must not end with /" }
        for component in path.unicodeScalars.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "empty node name (\"//\")" }
            var name: String { String(String.UnicodeScalarView(component)) }
            if component.count <= 2 && component.allSatisfy({ $0 == "." }) {
                return "relative path component \"\(name)\""
            }
            for scalar in component {
                let value = scalar.value
                if value == 0 { return "null character in \"\(name)\"" }
                // The server checks UTF-16 code units: a character past U+FFFF arrives there as a
                // surrogate pair (in 0xD800...0xDFFF) and is refused, so it is refused here too.
                if (0x01...0x1F).contains(value) || (0x7F...0x9F).contains(value)
                    || (0xD800...0xF8FF).contains(value) || (0xFFF0...0xFFFF).contains(value) || value > 0xFFFF
                {
                    return "invalid character U+\(String(value, radix: 16, uppercase: true)) in \"\(name)\""
                }
            }
        }
        return nil
    }

    /// The parent of `path` (`"/"` for a top-level node), or `nil` for the root.
    public static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of `path`.
    public static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `parent` + `/` + `child`.
    public static func join(_ parent: String, _ child: String) -> String {
        parent == "/" ? "/" + child : parent + "/" + child
    }

    /// Every proper ancestor of `path`, outermost first, excluding the root.
    public static func ancestors(of path: String) -> [String] {
        var result: [String] = []
        var current = parent(of: path)
        while let node = current, node != "/" {
            result.append(node)
            current = parent(of: node)
        }
        return result.reversed()
    }
}

/// A parsed and validated connect string: `host:port[,host:port…][/chroot]`.
public struct ConnectString: Sendable, Hashable, CustomStringConvertible {
    /// One server of the connect string.
    public struct Server: Sendable, Hashable {
        /// Its host name or IP address (IPv6 without brackets).
        public var host: String
        /// Its client port.
        public var port: Int
        /// The server `host:port`.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// The servers, in the order given.
    public var servers: [Server]
    /// The chroot every path is relative to, or `nil`.
    public var chroot: String?

    /// `servers` under `chroot`.
    public init(servers: [Server], chroot: String? = nil) {
        self.servers = servers
        self.chroot = chroot
    }

    /// Parses `text`; throws `.invalidConnectString` naming what is wrong.
    public init(_ text: String) throws(ZooKeeperError) {
        func fail(_ problem: String) -> ZooKeeperError {
            ZooKeeperError(.invalidConnectString, message: "invalid connect string \"\(text)\": \(problem)")
        }
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { throw fail("it is empty") }
        var hostsPart = Substring(trimmed)
        var chroot: String?
        // The chroot starts at the first "/" (IPv6 literals are bracketed and have no "/").
        if let slash = trimmed.firstIndex(of: "/") {
            hostsPart = trimmed[..<slash]
            let root = String(trimmed[slash...])
            if root != "/" {
                if let problem = ZooKeeperPath.problem(in: root) { throw fail("chroot \(root): \(problem)") }
                chroot = root
            }
        }
        var servers: [Server] = []
        for entry in hostsPart.split(separator: ",", omittingEmptySubsequences: false) {
            let item = String(entry).trimmingSpaces
            guard !item.isEmpty else { throw fail("an empty server entry") }
            var host: String
            var portText: String?
            if item.hasPrefix("[") {
                guard let close = item.firstIndex(of: "]") else { throw fail("unterminated IPv6 address in \"\(item)\"") }
                host = String(item[item.index(after: item.startIndex)..<close])
                let rest = item[item.index(after: close)...]
                if !rest.isEmpty {
                    guard rest.first == ":" else { throw fail("unexpected text after \"]\" in \"\(item)\"") }
                    portText = String(rest.dropFirst())
                }
            } else {
                let parts = item.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count <= 2 else { throw fail("\"\(item)\" has more than one \":\" (bracket IPv6 addresses)") }
                host = String(parts[0])
                if parts.count == 2 { portText = String(parts[1]) }
            }
            guard !host.isEmpty else { throw fail("missing host in \"\(item)\"") }
            guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "_" }) else {
                throw fail("host \"\(host)\" has characters a host name cannot have")
            }
            var port = 2181
            if let portText {
                guard let value = Int(portText), (1...65535).contains(value) else {
                    throw fail("port \"\(portText)\" of \"\(item)\" is not a number between 1 and 65535")
                }
                port = value
            }
            servers.append(Server(host: host, port: port))
        }
        self.servers = servers
        self.chroot = chroot
    }

    /// The string handed to the C client.
    public var description: String {
        servers.map { $0.host.contains(":") ? "[\($0.host)]:\($0.port)" : "\($0.host):\($0.port)" }
            .joined(separator: ",") + (chroot ?? "")
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while scalars.first == " " || scalars.first == "\t" || scalars.first == "\n" { scalars.removeFirst() }
        while scalars.last == " " || scalars.last == "\t" || scalars.last == "\n" { scalars.removeLast() }
        return String(scalars)
    }
}
