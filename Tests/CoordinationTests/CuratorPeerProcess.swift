import Foundation
import Synchronization

/// Apache Curator 5.4 (the Debian packages) as a real peer: `Curator/CuratorPeer.java`, compiled
/// with `javac` once per test run and started as a child process per participant. It prints one
/// line per event and reads commands from its standard input (see the Java file's header).
final class CuratorPeerProcess: Sendable {
    static let javaDirectory = "/usr/share/java"
    static let compileJars = [
        "curator-recipes", "curator-framework", "curator-client", "curator-x-discovery", "zookeeper", "zookeeper-jute",
        "guava", "slf4j-api", "jackson-databind", "jackson-core", "jackson-annotations",
    ].map { "\(javaDirectory)/\($0).jar" }
    static let runJars = compileJars + ["\(javaDirectory)/slf4j-simple.jar"]

    /// Whether Curator and a JDK are installed (`scripts/install-dependencies` installs them).
    static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/javac") && runJars.allSatisfy(FileManager.default.fileExists(atPath:))
    }

    /// Whether the interoperability tests run: when Curator is installed, or when the test
    /// command requires them (`COORDINATION_REQUIRE_CURATOR=1`, then a missing install fails them).
    static var shouldRun: Bool {
        isInstalled || ProcessInfo.processInfo.environment["COORDINATION_REQUIRE_CURATOR"] == "1"
    }

    /// The directory of the compiled peer (compiled on first use).
    static let compiled = Task<String, any Error> {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Curator/CuratorPeer.java").path
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("curator-peer-\(getpid())").path
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let javac = try CuratorPeerProcess(
            executable: "/usr/bin/javac", arguments: ["-nowarn", "-d", output, "-cp", compileJars.joined(separator: ":"), source])
        var lines: [String] = []
        for await line in javac.lines { lines.append(line) }
        let status = await javac.exitStatus()
        guard status == 0 else { throw PeerFailure(description: "javac CuratorPeer.java failed (\(status)): \(lines.joined(separator: "\n"))") }
        return output
    }

    struct PeerFailure: Error, CustomStringConvertible {
        var description: String
    }

    private let process: Process
    private let input: FileHandle
    /// The peer's standard output and error, line by line.
    let lines: AsyncStream<String>
    private let exit: Task<Int32, Never>

    /// Starts `CuratorPeer <command> --zk <connectString> <options>`.
    static func start(_ command: String, zk connectString: String, _ options: KeyValuePairs<String, String>) async throws -> CuratorPeerProcess {
        let classes = try await compiled.value
        var arguments = ["-cp", ([classes] + runJars).joined(separator: ":"), "CuratorPeer", command, "--zk", connectString]
        for (key, value) in options { arguments += ["--\(key)", value] }
        return try CuratorPeerProcess(executable: "/usr/bin/java", arguments: arguments)
    }

    private init(executable: String, arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        input = stdin.fileHandleForWriting
        let (lines, continuation) = AsyncStream<String>.makeStream()
        self.lines = lines
        // A thread of its own reads the output with blocking reads until the end of the stream
        // (FileHandle's readabilityHandler, a dispatch source, can crash libdispatch when the
        // handle goes away while the source is still armed).
        let reader = stdout.fileHandleForReading
        Thread.detachNewThread {
            var pending: [UInt8] = []
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                pending += data
                while let newline = pending.firstIndex(of: 10) {
                    continuation.yield(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { continuation.yield(String(decoding: pending, as: UTF8.self)) }
            continuation.finish()
            try? reader.close()
        }
        let (exits, exited) = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { process in
            exited.yield(process.terminationStatus)
            exited.finish()
        }
        try process.run()
        exit = Task { await exits.first { _ in true } ?? -1 }
    }

    /// Sends one command line to the peer.
    func send(_ line: String) {
        try? input.write(contentsOf: Data((line + "\n").utf8))
    }

    /// The exit status, once the peer has exited.
    func exitStatus() async -> Int32 { await exit.value }

    /// Whether the peer is still running.
    var isRunning: Bool { process.isRunning }

    /// Kills the peer with SIGKILL (its session stays until the server expires it).
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
    }

    /// Ends the peer if it still runs.
    func terminate() {
        if process.isRunning { process.terminate() }
    }
}

/// Reads a peer's lines until one satisfies `matches` (every line read goes to `seen`); throws
/// when the peer's output ends first. (The tests' time limits bound the wait.)
func awaitLine(
    _ iterator: inout AsyncStream<String>.AsyncIterator, seen: inout [String], _ matches: (String) -> Bool
) async throws -> String {
    while true {
        guard let line = await iterator.next() else { break }
        seen.append(line)
        if matches(line) { return line }
    }
    throw CuratorPeerProcess.PeerFailure(description: "no expected line; the peer said: \(seen.joined(separator: " | "))")
}
