import ZooKeeper

extension ZooKeeperClient {
    /// Makes the server expire this client's current session, the standard way: a second handle
    /// attaches to the same session (id and password) and closes it. Returns once this client has
    /// seen the expiry (by default it then opens a new session by itself).
    ///
    /// The two handles can trade the session back and forth before the close reaches the server,
    /// so the trick is repeated until the expiry shows.
    ///
    /// - Throws: ``ZooKeeperTestingError`` when the client has no connected session, or the session
    ///   did not expire within `timeout`.
    public func expireSessionForTesting(timeout: Duration = .seconds(30)) async throws {
        guard let credentials = sessionCredentials else {
            throw ZooKeeperTestingError("the client has no connected session to expire")
        }
        var expired: Bool { sessionCredentials?.sessionID != credentials.sessionID }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var configuration = ZooKeeperClient.Configuration()
            configuration.resumeSession = credentials
            configuration.reconnectAfterExpiry = false
            configuration.sessionTimeout = self.configuration.sessionTimeout
            configuration.connectionTimeout = .seconds(5)
            configuration.cLibraryLogLevel = nil
            let impostor = try ZooKeeperClient(connectString: connectString.description, configuration: configuration)
            _ = try? await impostor.connect()
            await impostor.close()
            for _ in 0..<60 where !expired {
                try await Task.sleep(for: .milliseconds(50))
            }
            if expired { return }
        }
        throw ZooKeeperTestingError("session 0x\(String(UInt64(bitPattern: credentials.sessionID), radix: 16)) did not expire within \(timeout)")
    }
}

extension ChildProcess {
    /// Stops the process (SIGSTOP) until ZooKeeper has expired its session, then continues it
    /// (SIGCONT). The expiry is observed, not timed: `ephemeral`, a node the process's session
    /// owns, is deleted by the server when the session expires. Returns the expired session's id,
    /// so the caller can check that the node comes back from a new session.
    ///
    /// - Parameters:
    ///   - ephemeral: the path of a node the process's session owns.
    ///   - observer: a connected client of the test (another session).
    ///   - timeout: how long to wait for the server to expire the session.
    /// - Throws: ``ZooKeeperTestingError`` when `ephemeral` is not an ephemeral node, or was not
    ///   deleted within `timeout` (the process is continued in every case).
    @discardableResult
    public func pauseUntilSessionExpires(ephemeral: String, observer: ZooKeeperClient, timeout: Duration = .seconds(60)) async throws -> Int64 {
        guard let stat = try await observer.exists(ephemeral), stat.ephemeralOwner != 0 else {
            throw ZooKeeperTestingError("\(ephemeral) is not an ephemeral node of the process")
        }
        pause()
        defer { resume() }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (current, watch) = try await observer.existsAndWatch(ephemeral)
            guard let current, current.ephemeralOwner == stat.ephemeralOwner else { return stat.ephemeralOwner }
            _ = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await watch.triggered() }
                group.addTask { try await Task.sleep(until: deadline) }
                defer { group.cancelAll() }
                try await group.next()
            }
        }
        throw ZooKeeperTestingError(
            "session 0x\(String(UInt64(bitPattern: stat.ephemeralOwner), radix: 16)) still owned \(ephemeral) after \(timeout) of SIGSTOP")
    }
}
