/// How the coordinator's round ends, from the members' answers (pure).
public struct CommitRound: Sendable, Hashable {
    /// A member's answer to prepare or commit.
    public enum Answer: Sendable, Hashable {
        case yes
        /// It answered no, failed, or did not answer in time.
        case failed(String)
    }

    /// Members to expel.
    public var expel: [String]
    /// Why the operation does not go ahead; nil when it proceeds (to the record in ZooKeeper,
    /// then commit).
    public var abortReason: String?
    public var proceeds: Bool { abortReason == nil }

    /// After prepare: every member that failed is expelled; the operation goes ahead unless the
    /// coordinator itself failed (then nothing is expelled: the coordinator is the suspect).
    public static func afterPrepare(coordinator: String, answers: [String: Answer]) -> CommitRound {
        if case .failed(let reason) = answers[coordinator] ?? .failed("no answer") {
            return CommitRound(expel: [], abortReason: "the coordinator could not prepare: \(reason)")
        }
        let failed = answers.filter { $0.value != .yes }.keys.sorted()
        return CommitRound(expel: failed, abortReason: nil)
    }

    /// After commit (the decision is recorded): members that did not commit are expelled.
    public static func afterCommit(answers: [String: Answer]) -> [String] {
        answers.filter { $0.value != .yes }.keys.sorted()
    }
}
