import ZooKeeper

/// Waits for `watch` to fire, or throws ``CoordinationError/Code/timedOut`` at `deadline`, naming
/// `path` and saying what did not happen in time (`what`: "acquired", "released", …).
func waitForEvent(_ watch: NodeWatch, until deadline: ContinuousClock.Instant?, path: String, what: String = "released") async throws {
    guard let deadline else {
        _ = try await watch.triggered()
        return
    }
    let fired = try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            _ = try await watch.triggered()
            return true
        }
        group.addTask {
            try await Task.sleep(until: deadline)
            return false
        }
        defer { group.cancelAll() }
        return try await group.next() ?? false
    }
    if !fired { throw CoordinationError(.timedOut, path: path, message: "not \(what) before the deadline") }
}

/// Waits until `client` is connected, or throws ``CoordinationError/Code/timedOut`` naming `path`
/// at `deadline` (not the client's `.connectionTimeout`: the caller's deadline passed).
func waitForConnection(_ client: ZooKeeperClient, until deadline: ContinuousClock.Instant?, path: String) async throws {
    if let deadline, ContinuousClock.now >= deadline {
        throw CoordinationError(.timedOut, path: path, message: "not done before the deadline")
    }
    do {
        try await client.waitUntilConnected(timeout: deadline.map { $0 - .now })
    } catch let error as ZooKeeperError where error.code == .connectionTimeout {
        throw CoordinationError(.timedOut, path: path, message: "not connected again before the deadline")
    }
}
