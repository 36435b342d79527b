import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A process a test starts (a ZooKeeper server, a demo node): its output appended to a log file,
/// its exit awaited without blocking a thread, signals, and a watchdog that kills it if the test
/// process dies first (a crash or a time limit), so nothing outlives a test run. Can be started
/// again after it exits.
public final class ChildProcess: @unchecked Sendable {
    /// Where stdout and stderr go (appended across starts).
    public let logPath: String
    private let lock = NSLock()
    private var process: Process?
    private var exit: ExitLatch?

    /// A process (not started yet) whose output goes to `logPath`.
    public init(logPath: String) {
        self.logPath = logPath
    }

    /// Starts `executable` (unless it is running), with this process's environment plus `environment`.
    public func start(executable: String, arguments: [String], environment: [String: String] = [:]) throws {
        try lock.withLock {
            if let process, process.isRunning { return }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
            if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            log.seekToEndOfFile()
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            let exit = ExitLatch()
            process.terminationHandler = { exit.exited($0.terminationStatus) }
            try process.run()
            self.process = process
            self.exit = exit
            Self.watch(process.processIdentifier)
        }
    }

    /// A shell loop that kills `child` once this test process is gone.
    private static func watch(_ child: pid_t) {
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = [
            "-c",
            "while kill -0 \(getpid()) 2>/dev/null && kill -0 \(child) 2>/dev/null; do sleep 1; done; "
                + "kill -0 \(getpid()) 2>/dev/null || kill -9 \(child) 2>/dev/null",
        ]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try? watchdog.run()
    }

    /// Whether the process is running.
    public var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }

    /// The running process's id.
    public var processIdentifier: pid_t? {
        lock.withLock { process.flatMap { $0.isRunning ? $0.processIdentifier : nil } }
    }

    /// Sends `number` if the process is running.
    public func signal(_ number: Int32) {
        if let pid = processIdentifier { kill(pid, number) }
    }

    /// Waits for the process to exit (without blocking a thread); its status, or nil if it was
    /// never started or did not exit within `timeout` (it is then killed, so a hung child cannot
    /// hang the test run).
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(90)) async -> Int32? {
        guard let exit = lock.withLock({ self.exit }) else { return nil }
        return await exitOrKill(exit, after: timeout)
    }

    /// The exit status, or nil when `limit` passed first: the process is then killed (which also
    /// ends the wait on the latch, so the task group can finish).
    private func exitOrKill(_ exit: ExitLatch, after limit: Duration) async -> Int32? {
        await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await exit.wait() }
            group.addTask {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled {
                    self.signal(SIGCONT)
                    self.signal(SIGKILL)
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// SIGKILL (after SIGCONT, in case it is paused), and waits for the exit.
    public func kill9() async {
        signal(SIGCONT)
        signal(SIGKILL)
        guard let exit = lock.withLock({ self.exit }) else { return }
        _ = await exit.wait()
    }

    /// Sends `signal` (SIGTERM by default) and waits for the exit; kills it if it has not exited
    /// within `grace`.
    public func stop(signal number: Int32 = SIGTERM, grace: Duration = .seconds(15)) async {
        guard let exit = lock.withLock({ self.exit }), isRunning else { return }
        signal(SIGCONT)
        signal(number)
        _ = await exitOrKill(exit, after: grace)
    }

    /// Freezes the process (SIGSTOP): its connections stay open, nothing answers.
    public func pause() { signal(SIGSTOP) }

    /// Resumes a paused process (SIGCONT).
    public func resume() { signal(SIGCONT) }

    /// Kills the process and blocks until it is gone (for `deinit`s and teardown outside async code).
    public func killAndWait() {
        let process = lock.withLock { self.process }
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Everything the process wrote so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// An executable of this package built next to the test bundle (`swift build` puts test
    /// bundles and products in the same directory), or in `.build/debug` of the package holding
    /// `testFile`.
    public static func builtExecutable(named name: String, testFile: String = #filePath) -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path,
            URL(fileURLWithPath: testFile).deletingLastPathComponent().appendingPathComponent("../../.build/debug/\(name)").standardized.path,
            URL(fileURLWithPath: testFile).deletingLastPathComponent().appendingPathComponent("../../../.build/debug/\(name)").standardized.path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }
}

/// A process's exit, awaited without blocking a thread (`Process.waitUntilExit` would hold one of
/// the cooperative threads).
final class ExitLatch: @unchecked Sendable {
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [CheckedContinuation<Int32, Never>] = []

    func exited(_ status: Int32) {
        let waiters = lock.withLock {
            self.status = status
            defer { self.waiters = [] }
            return self.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = lock.withLock { () -> Int32? in
                if self.status == nil { waiters.append(continuation) }
                return self.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }
}
