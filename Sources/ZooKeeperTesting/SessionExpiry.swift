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
