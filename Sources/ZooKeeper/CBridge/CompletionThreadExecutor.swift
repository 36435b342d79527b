#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// A task executor that runs a task on the C client's completion thread when a reply resumes it,
/// instead of handing it to the cooperative pool: one thread hop less per request (see
/// ``ZooKeeperClient/completionExecutor``).
///
/// A completion (on the C client's completion thread) delivers the reply inside
/// ``deliveringCompletion(_:)``: a task with this executor preference that the reply resumes is
/// enqueued here during the delivery, kept in the thread's list, and run when the delivery
/// returns, on the same thread, until it suspends again (typically: it sent its next request and
/// waits for the reply). A job enqueued anywhere else (the task's first job, a resume by something
/// other than a reply) runs on a Dispatch thread.
final class CompletionThreadExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = CompletionThreadExecutor()

    private init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if let jobs = DeliveryJobs.current, jobs.isDelivering {
            jobs.pending.append(job)
        } else {
            let executor = asUnownedTaskExecutor()
            DispatchQueue.global().async { job.runSynchronously(on: executor) }
        }
    }

    /// Runs `deliver` (which resumes waiting tasks), then the jobs it made ready here.
    @inline(__always)
    static func deliveringCompletion(_ deliver: () -> Void) {
        let jobs = DeliveryJobs.forThisThread()
        jobs.isDelivering = true
        deliver()
        jobs.isDelivering = false
        guard !jobs.pending.isEmpty else { return }
        let executor = shared.asUnownedTaskExecutor()
        // By index, so that a job that makes another one ready here (by resuming a task of this
        // executor that it does not wait for) appends it and it runs next; the list keeps its
        // storage for the next delivery.
        var next = 0
        while next < jobs.pending.count {
            let job = jobs.pending[next]
            next += 1
            jobs.isDelivering = true
            job.runSynchronously(on: executor)
            jobs.isDelivering = false
        }
        jobs.pending.removeAll(keepingCapacity: true)
    }
}

/// The jobs a completion thread made ready while it delivered a reply (one per thread, in
/// thread-specific storage: only that thread touches it).
final class DeliveryJobs {
    var isDelivering = false
    var pending: [UnownedJob] = []

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<DeliveryJobs>.fromOpaque(pointer).release() }
        }
        return key
    }()

    /// This thread's jobs, if it ever delivered a reply.
    static var current: DeliveryJobs? {
        pthread_getspecific(key).map { Unmanaged<DeliveryJobs>.fromOpaque($0).takeUnretainedValue() }
    }

    static func forThisThread() -> DeliveryJobs {
        if let current { return current }
        let jobs = DeliveryJobs()
        pthread_setspecific(key, Unmanaged.passRetained(jobs).toOpaque())
        return jobs
    }
}
