import ArgumentParser
import Foundation
import Synchronization
import ZooKeeper

/// `zk-bench --zk HOST:PORT --workload NAME [--n N] [--clients C] [--payload BYTES]`: runs one
/// workload of the shared contract and prints one JSON object as the last line of its output.
@main
struct ZKBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zk-bench",
        abstract: "Runs one coordination workload against a running ZooKeeper server and prints a JSON result line.")

    @Option(name: .customLong("zk"), help: "The server, HOST:PORT.")
    var server: String

    @Option(help: "get-pipelined, get-sequential, set-pipelined, create-delete, lock-uncontended, lock-contended, election-handoff, membership-propagation.")
    var workload: String

    @Option(help: "Operations to run (default: the workload's).")
    var n: Int?

    @Option(help: "Sessions for the multi-session workloads.")
    var clients: Int?

    @Option(help: "Payload size in bytes.")
    var payload: Int = 128

    @Option(help: "Upper bound of the measured phase in seconds.")
    var timeout: Double = 300

    @Flag(help: "Run the workload's tasks on the client's completion thread (ZooKeeperClient.completionExecutor) instead of the cooperative pool.")
    var completionExecutor = false

    func run() async throws {
        let count: Int
        let sessions: Int
        let body: @Sendable () async throws -> Measurement
        let executor: (any TaskExecutor)? = completionExecutor ? ZooKeeperClient.completionExecutor : nil
        if let kind = Workload(rawValue: workload) {
            count = n ?? kind.defaultCount
            sessions = 1
            body = { [server, payload] in try await kind.run(server: server, count: count, payload: payload, executor: executor) }
        } else if let kind = RecipeWorkload(rawValue: workload) {
            count = n ?? kind.defaultCount
            sessions = clients ?? kind.defaultClients
            // The workload's own loop (and the task groups it opens) prefer the executor; the
            // recipes' internal tasks run where the library puts them.
            body = { [server, payload] in
                try await withTaskExecutorPreference(executor) {
                    try await kind.run(server: server, count: count, clients: sessions, payload: payload)
                }
            }
        } else {
            emit(["impl": "swift", "workload": workload, "ok": false, "unsupported": true,
                  "error": "unsupported workload \(workload)"])
            throw ExitCode(2)
        }
        var result: [String: Any] = ["impl": "swift", "workload": workload, "n": count, "clients": sessions]
        do {
            let measurement = try await withDeadline(.seconds(timeout), body)
            result["seconds"] = measurement.seconds
            result["ops_per_sec"] = (Double(count) / measurement.seconds * 10).rounded() / 10
            result["p50_us"] = measurement.percentile(50)
            result["p99_us"] = measurement.percentile(99)
            result["client_cpu_us_per_op"] = (measurement.cpuSeconds * 1e6 / Double(count) * 10).rounded() / 10
            result["max_rss_kb"] = maxResidentKilobytes()
            // For the memory check: what the process holds after the loop, less the 8 bytes per
            // operation this harness keeps for latencies.
            if measurement.residentAfterLoopKilobytes > 0 {
                result["rss_after_loop_kb"] = measurement.residentAfterLoopKilobytes
                result["rss_after_loop_without_latencies_kb"] = measurement.residentAfterLoopKilobytes - count * 8 / 1024
            }
            for (key, value) in measurement.extra { result[key] = value }
            for (key, value) in measurement.extraFractions { result[key] = (value * 100).rounded() / 100 }
            result["ok"] = measurement.failure == nil
            if let failure = measurement.failure { result["error"] = failure }
            emit(result)
            if measurement.failure != nil { throw ExitCode(1) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            result["ok"] = false
            result["error"] = "\(error)"
            emit(result)
            throw ExitCode(1)
        }
    }

    func emit(_ object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// What a workload measured.
struct Measurement: Sendable {
    var seconds: Double
    var latenciesNanoseconds: [UInt64]
    var cpuSeconds: Double
    var failure: String?
    /// Resident memory right after the measured loop, before any result bookkeeping.
    var residentAfterLoopKilobytes: Int = 0
    /// Workload-specific fields for the JSON line.
    var extra: [String: Int] = [:]
    /// Workload-specific fractions for the JSON line (two decimals).
    var extraFractions: [String: Double] = [:]

    init(seconds: Double, latenciesNanoseconds: [UInt64], cpuSeconds: Double, failure: String? = nil,
         residentAfterLoopKilobytes: Int = 0) {
        self.seconds = seconds
        self.latenciesNanoseconds = latenciesNanoseconds
        self.cpuSeconds = cpuSeconds
        self.failure = failure
        self.residentAfterLoopKilobytes = residentAfterLoopKilobytes
    }

    /// Nearest-rank percentile in whole microseconds (`k = ceil(m·P/100)`), or `nil` without latencies.
    func percentile(_ p: Double) -> Any {
        percentileMicroseconds(p) ?? NSNull()
    }

    func percentileMicroseconds(_ p: Double) -> Int? {
        guard !latenciesNanoseconds.isEmpty else { return nil }
        let sorted = latenciesNanoseconds.sorted()
        let rank = max(1, Int((Double(sorted.count) * p / 100).rounded(.up)))
        return Int((Double(sorted[rank - 1]) / 1000).rounded())
    }
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// The process's peak resident set size so far, in KiB.
func maxResidentKilobytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss
}

/// The process's resident set size now, in KiB (from /proc/self/statm).
func currentResidentKilobytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

func withDeadline<R: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
    try await withThrowingTaskGroup(of: R.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw BenchError("the measured phase exceeded \(limit)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
