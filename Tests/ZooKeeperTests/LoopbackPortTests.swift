import Foundation
import Testing
import ZooKeeperTesting

#if canImport(Glibc)
import Glibc
#endif

/// The test support's ports: tests start servers in parallel, so a port handed to one must not be
/// handed to another before it binds it.
@Suite struct LoopbackPortTests {
    /// Ports asked for at once from many tasks, each released at once (as a server that has not
    /// bound yet leaves it): no port is given twice.
    @Test func noPortIsGivenTwice() async throws {
        let ports = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<8 { group.addTask { try (0..<100).map { _ in try freeLoopbackPort() } } }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(ports.count == 800)
        #expect(Set(ports).count == ports.count)
    }

    /// A held refusing port refuses connections and cannot be bound by anyone else; released, it
    /// can.
    @Test func aRefusingPortRefusesAndCannotBeTaken() throws {
        var nobody: RefusingLoopbackPort? = try RefusingLoopbackPort()
        let port = nobody!.port
        #expect(Self.connect(to: port) == ECONNREFUSED)
        #expect(Self.bind(port) == EADDRINUSE)
        nobody = nil
        #expect(Self.bind(port) == 0)
    }

    private static func address(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// 0 when a new socket connects to `port`, else the errno.
    private static func connect(to port: Int) -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var target = address(port)
        let result = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0 ? 0 : errno
    }

    /// 0 when a new socket (with `SO_REUSEADDR`, as servers set it) binds `port`, else the errno.
    private static func bind(_ port: Int) -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var target = address(port)
        let result = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0 ? 0 : errno
    }
}
