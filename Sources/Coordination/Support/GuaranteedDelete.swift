import ZooKeeper

extension ZooKeeperClient {
    /// Deletes `path` whatever happens to the calling task: the delete is sent before this returns
    /// (so every later request of this client sees it: the server answers a session's requests in
    /// order), and a task of its own retries it until the node is gone, its session is gone, or the
    /// client is closed ("guaranteed delete", as Curator's `guaranteed()`). Other sessions see the
    /// node gone a moment later. With `owner`, a node another session holds by then is left alone.
    func deleteGuaranteed(_ path: String, owner: Int64? = nil) {
        let first = submitDelete(path)
        Task.detached { [self] in
            var attempt: PendingReply<Void>? = first
            while true {
                do {
                    try await (attempt ?? submitDelete(path)).value()
                    return
                } catch let error as ZooKeeperError {
                    attempt = nil
                    switch error.code {
                    case .noNode, .closed, .authFailed: return
                    case .sessionExpired where owner == nil: return
                    default:
                        // Retrying helps only a lost connection (or an expiry when an owner is
                        // named: its node went with its session); not a refusal.
                        guard error.isRetryable || error.code == .sessionExpired else { return }
                        if let owner, let stat = try? await exists(path), stat.ephemeralOwner != owner { return }
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                } catch {
                    return
                }
            }
        }
    }
}
