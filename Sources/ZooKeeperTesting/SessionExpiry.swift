import ZooKeeper

extension ZooKeeperClient {
    /// Makes the server expire this client's current session, the standard way: a second handle
    /// attaches to the same session (id and password) and closes it. The client learns of the
    /// expiry the next time it talks to the server, and (by default) opens a new session.
    ///
    /// - Throws: ``ZooKeeperTestingError`` when the client has no connected session.
    public func expireSessionForTesting() async throws {
        guard let credentials = sessionCredentials else {
            throw ZooKeeperTestingError("the client has no connected session to expire")
        }
        var configuration = ZooKeeperClient.Configuration()
        configuration.resumeSession = credentials
        configuration.reconnectAfterExpiry = false
        configuration.sessionTimeout = self.configuration.sessionTimeout
        configuration.cLibraryLogLevel = nil
        let impostor = try ZooKeeperClient(connectString: connectString.description, configuration: configuration)
        do {
            try await impostor.connect()
        } catch {
            await impostor.close()
            throw error
        }
        await impostor.close()
    }
}
