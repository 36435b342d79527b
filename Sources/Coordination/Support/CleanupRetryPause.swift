import ZooKeeper

extension ZooKeeperClient {
    /// The wait of a background clean-up (a delete that must happen, a node left by a lost reply)
    /// before it sends again after a retryable error: until the connection is back (a session
    /// event, not a poll), then a moment, as the server may be throttling. Returns at once when
    /// the session ends or the client closes: the clean-up's own check then stops it.
    func pauseBeforeCleanupRetry() async {
        if !state.isConnected { _ = try? await waitUntilConnected() }
        try? await Task.sleep(for: .milliseconds(50))
    }
}
