import ZooKeeper

extension ZooKeeperClient {
    /// Deletes `path` whatever happens to the calling task: the delete is sent before this returns
    /// (so every later request of this client sees it: the server answers a session's requests in
    /// order), and a task of its own retries it until the node is gone, its session is gone, or the
    /// client is closed ("guaranteed delete", as Curator's `guaranteed()`). Other sessions see the
    /// node gone a moment later. With `owner`, a node another session holds by then is left alone;
    /// with `czxid` (the node's creation), a retry leaves alone a node created again at `path`
    /// meanwhile (by this session too: a fixed-name member that joins again after leaving), and
    /// with `version` too, one written since (the same node, adopted by a member joining again).
    ///
    /// For ephemeral nodes only: an expired session ends the retries (its nodes went with it).
    /// - Returns: the task that retries, ended once the delete is done or given up.
    @discardableResult
    func deleteGuaranteed(_ path: String, owner: Int64? = nil, czxid: Int64? = nil, version: Int32? = nil) -> Task<Void, Never> {
        let first = submitDelete(path)
        return Task.detached { [self] in
            var attempt: PendingReply<Void>? = first
            while true {
                do {
                    if let sent = attempt {
                        try await sent.value()
                    } else if owner != nil || czxid != nil {
                        // A retry: is the node there still the one to delete?
                        guard let stat = try await exists(path) else { return }
                        if let owner, stat.ephemeralOwner != owner { return }
                        if let czxid, stat.czxid != czxid { return }
                        if let version, stat.version != version { return }
                        try await submitDelete(path, version: stat.version).value()
                    } else {
                        try await submitDelete(path).value()
                    }
                    return
                } catch let error as ZooKeeperError {
                    attempt = nil
                    switch error.code {
                    case .noNode, .closed, .authFailed, .sessionExpired: return
                    default:
                        // Retrying helps only a lost connection (or a node changed since it was
                        // looked at); not a refusal.
                        guard error.isRetryable || error.code == .badVersion else { return }
                        await pauseBeforeCleanupRetry()
                    }
                } catch {
                    return
                }
            }
        }
    }
}
