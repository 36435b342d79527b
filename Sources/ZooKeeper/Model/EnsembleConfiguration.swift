/// The configuration of a ZooKeeper ensemble as the servers publish it in `/zookeeper/config`
/// (ZooKeeper 3.5+, dynamic reconfiguration): its servers and the configuration's version.
///
/// Parsed from the text the server keeps, one line per server and the version last:
///
/// ```
/// server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181
/// server.2=10.0.0.2:2888:3888:participant;2181
/// version=100000003
/// ```
public struct EnsembleConfiguration: Sendable, Hashable {
    /// One server of the ensemble.
    public struct Server: Sendable, Hashable {
        /// Whether a server votes.
        public enum Role: String, Sendable, Hashable {
            /// Votes in elections and on writes.
            case participant
            /// Serves clients and follows the leader without voting.
            case observer
        }

        /// The server's id (`server.<id>`).
        public var id: Int
        /// The host the other servers reach it at.
        public var host: String
        /// The port the followers talk to the leader on.
        public var quorumPort: Int
        /// The port of leader election.
        public var electionPort: Int
        /// Whether it votes.
        public var role: Role
        /// Where clients connect, when the line says (`;[host:]port`); a wildcard host
        /// (`0.0.0.0`, `::`) or none means the server's own host.
        public var clientAddress: ConnectString.Server?

        /// A server with these addresses.
        public init(id: Int, host: String, quorumPort: Int, electionPort: Int, role: Role = .participant, clientAddress: ConnectString.Server?) {
            self.id = id
            self.host = host
            self.quorumPort = quorumPort
            self.electionPort = electionPort
            self.role = role
            self.clientAddress = clientAddress
        }

        /// The line as a configuration (and a reconfiguration's `joining` list) writes it:
        /// `server.<id>=<host>:<quorum port>:<election port>:<role>;<client host>:<client port>`.
        public var configurationLine: String {
            var line = "server.\(id)=\(Self.bracketed(host)):\(quorumPort):\(electionPort):\(role.rawValue)"
            if let clientAddress { line += ";\(Self.bracketed(clientAddress.host)):\(clientAddress.port)" }
            return line
        }

        static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
    }

    /// The servers, in the order of their ids.
    public var servers: [Server]
    /// The configuration's version (the zxid that made it), or `nil` for a configuration that
    /// has none (a static one).
    public var version: Int64?

    /// A configuration of `servers` at `version`.
    public init(servers: [Server], version: Int64?) {
        self.servers = servers.sorted { $0.id < $1.id }
        self.version = version
    }

    /// Parses the text of `/zookeeper/config`.
    /// - Throws: `.marshallingError` naming the line that is not a server or version line.
    public init(parsing text: String) throws(ZooKeeperError) {
        var servers: [Server] = []
        var version: Int64?
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = String(rawLine).trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else { throw Self.problem(line, "it has no \"=\"") }
            let key = String(line[..<equals]).trimmingSpaces
            let value = String(line[line.index(after: equals)...]).trimmingSpaces
            if key == "version" {
                guard let parsed = Int64(value, radix: 16) else { throw Self.problem(line, "the version is not hexadecimal") }
                version = parsed
            } else if key.hasPrefix("server.") {
                guard let id = Int(key.dropFirst("server.".count)) else { throw Self.problem(line, "the server id is not a number") }
                servers.append(try Self.server(id: id, value: value, line: line))
            }
            // Other keys (for example a static configuration's) are not part of the membership.
        }
        self.init(servers: servers, version: version)
    }

    /// The client addresses of the servers that say where clients connect (participants and
    /// observers), in id order: what a client's server list follows.
    public var clientServers: [ConnectString.Server] {
        servers.compactMap(\.clientAddress)
    }

    private static func server(id: Int, value: String, line: String) throws(ZooKeeperError) -> Server {
        let halves = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
        let peerParts = splitAddress(halves[0])
        guard peerParts.count >= 3, let quorumPort = Int(peerParts[1]), let electionPort = Int(peerParts[2]) else {
            throw problem(line, "expected <host>:<quorum port>:<election port>[:<role>]")
        }
        var role = Server.Role.participant
        if peerParts.count >= 4 {
            guard let parsed = Server.Role(rawValue: peerParts[3]) else { throw problem(line, "unknown role \"\(peerParts[3])\"") }
            role = parsed
        }
        var clientAddress: ConnectString.Server?
        if halves.count == 2, !halves[1].isEmpty {
            let clientParts = splitAddress(halves[1])
            guard let port = Int(clientParts.last ?? ""), (1...65535).contains(port), clientParts.count <= 2 else {
                throw problem(line, "expected the client address as [<host>:]<port>")
            }
            let named = clientParts.count == 2 ? clientParts[0] : ""
            let wildcard = named.isEmpty || named == "0.0.0.0" || named == "::" || named == "0:0:0:0:0:0:0:0"
            clientAddress = ConnectString.Server(host: wildcard ? peerParts[0] : named, port: port)
        }
        return Server(id: id, host: peerParts[0], quorumPort: quorumPort, electionPort: electionPort, role: role, clientAddress: clientAddress)
    }

    /// Splits `host:port:…` at colons, keeping a bracketed IPv6 host whole (without brackets).
    private static func splitAddress(_ text: String) -> [String] {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            return [host] + rest.split(separator: ":").map(String.init)
        }
        return text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    }

    private static func problem(_ line: String, _ what: String) -> ZooKeeperError {
        ZooKeeperError(.marshallingError, path: "/zookeeper/config", message: "cannot read the ensemble configuration line \"\(line)\": \(what)")
    }
}
