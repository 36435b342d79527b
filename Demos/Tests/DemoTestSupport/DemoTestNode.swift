import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import ZooKeeperTesting

/// A demo node's process in a test: its own directory, its configuration file written before
/// every start, its log, signals, and HTTP requests to it. Each demo's test node subclasses it
/// with what is particular to that demo (its configuration, its API).
open class DemoTestNode: @unchecked Sendable {
    /// How the node is called in logs and failure messages ("node 2").
    public let label: String
    /// The node's directory (configuration, log, data).
    public let directory: String
    /// The demo executable.
    public let executable: String
    /// The running (or last run) process.
    public let child: ChildProcess

    /// A node in `directory` (created if missing) that runs `executable`, logging to `<directory>/<logName>`.
    public init(label: String, executable: String, directory: String, logName: String) throws {
        self.label = label
        self.executable = executable
        self.directory = directory
        child = ChildProcess(logPath: directory + "/" + logName)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Writes `configuration` to `<directory>/<file>` and starts the executable with
    /// `--config <that file> --log-level debug` (unless it is running).
    public func start(configuration: String, file: String, environment: [String: String] = [:]) throws {
        let path = directory + "/" + file
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        try child.start(executable: executable, arguments: ["--config", path, "--log-level", "debug"], environment: environment)
    }

    /// Whether the process is running.
    public var isRunning: Bool { child.isRunning }

    /// Waits for the process to exit (without blocking a thread) and returns its status.
    @discardableResult
    public func waitForExit() async -> Int32? { await child.waitForExit() }

    /// SIGKILL, and wait for the process to be gone.
    public func kill9() async { await child.kill9() }

    /// SIGTERM (a graceful stop), and wait; killed if it has not exited within its grace.
    public func stop() async { await child.stop() }

    /// SIGSTOP: the node hangs with its connections open (and its session alive for a while).
    public func pause() { child.pause() }

    /// SIGCONT.
    public func resume() { child.resume() }

    /// Sends a signal.
    public func signal(_ number: Int32) { child.signal(number) }

    /// Everything the process wrote so far.
    public var log: String { child.log }

    /// The lines of the log that contain every one of `parts` (evidence that something happened,
    /// before a test checks that nothing else did).
    public func logLines(containing parts: String...) -> [String] {
        log.split(separator: "\n").map(String.init).filter { line in parts.allSatisfy { line.contains($0) } }
    }

    /// One HTTP exchange with the node (or any server).
    public struct Reply: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: String
    }

    /// Sends one request to `http://<address><path>` and reads the whole answer.
    public static func request(
        _ method: HTTPMethod, address: String, _ path: String, headers: [(String, String)] = [], body: String? = nil,
        timeout: Duration = .seconds(20)
    ) async throws -> Reply {
        let (status, answerHeaders, bytes) = try await exchange(
            method, address: address, path, headers: headers, body: body.map { ByteBuffer(string: $0) }, timeout: timeout)
        return Reply(status: status, headers: answerHeaders, body: String(buffer: bytes))
    }

    /// Sends one request with a body of any bytes to `http://<address><path>` and reads the whole
    /// answer as bytes.
    public static func exchange(
        _ method: HTTPMethod, address: String, _ path: String, headers: [(String, String)] = [], body: ByteBuffer?,
        timeout: Duration = .seconds(20)
    ) async throws -> (status: Int, headers: HTTPHeaders, body: ByteBuffer) {
        var request = HTTPClientRequest(url: "http://\(address)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout / .milliseconds(1))))
        return (Int(response.status.code), response.headers, try await response.body.collect(upTo: 64 << 20))
    }
}
