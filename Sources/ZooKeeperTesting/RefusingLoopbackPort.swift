import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A loopback port where nothing listens and nothing can start listening while this is held:
/// a socket bound to it without `listen`, so every connection is refused at once.
///
/// A port from ``freeLoopbackPort()`` is free only when it is read: a server started in
/// parallel (another test's ZooKeeper) may take it before a test that needs "no server here"
/// connects to it. Holding the bound socket closes that race.
///
/// ```swift
/// let nobody = try RefusingLoopbackPort()
/// let client = try ZooKeeperClient(connectString: "127.0.0.1:\(nobody.port)")
/// ```
public final class RefusingLoopbackPort: Sendable {
    /// The port number on 127.0.0.1.
    public let port: Int
    private let descriptor: Int32

    /// Binds a new socket to a free port on 127.0.0.1 and keeps it until released.
    public init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ZooKeeperTestingError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        // No SO_REUSEADDR: on Linux no other socket may bind the port while this one holds it.
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(descriptor)
            throw ZooKeeperTestingError("bind() failed: errno \(code)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
