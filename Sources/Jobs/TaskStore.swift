// What workers and the outbox need from the database: task rows, claims, outcomes, result reuse, and which tasks
// still need their queue message. PostgreSQL implements it; unit tests use an in-memory one.

/// An image as read by a worker: its task, content hash and size.
public struct ReadImage: Sendable, Equatable {
    public var taskID: Int64
    public var sha256: String
    public var width: Int
    public var height: Int
    /// The prompt the task would run with: a result is reused only if it was made from the same one (a default
    /// template that changed between releases is stored as no template in both jobs). Nil: not compared.
    public var prompt: String?
    /// The image's Exif orientation tag (1 to 8; 1 when it has none), nil when not known.
    public var orientation: Int?

    public init(
        taskID: Int64, sha256: String, width: Int, height: Int, prompt: String? = nil, orientation: Int? = nil
    ) {
        (self.taskID, self.sha256, self.width, self.height, self.prompt) = (taskID, sha256, width, height, prompt)
        self.orientation = orientation
    }
}

/// A queued task whose message has not been confirmed, with the model its job runs on (the routing key).
public struct UnpublishedTask: Sendable, Equatable {
    public var task: TaskMessage.Task
    public var model: String

    public init(task: TaskMessage.Task, model: String) {
        self.task = task
        self.model = model
    }
}

/// A task whose lease expired, the worker that held it, and the status it has now.
public struct ExpiredLease: Sendable, Equatable {
    public var taskID: Int64
    public var worker: String
    public var status: TaskStatus

    public init(taskID: Int64, worker: String, status: TaskStatus) {
        (self.taskID, self.worker, self.status) = (taskID, worker, status)
    }
}

/// The job system's records. One caller at a time; a failure that `ServiceError.isTransient` accepts leaves the
/// store to be replaced by a new connection.
public protocol TaskStore {
    /// Whether the connection can still be used.
    var isHealthy: Bool { get }

    /// The rows of `ids` with their jobs' settings; ids with no row (a deleted job) are absent.
    func tasks(_ ids: [Int64]) throws -> [Int64: TaskRow]
    /// Marks tasks as started by `worker`, right before the model runs on them: running, one more attempt, and a
    /// lease of `lease` seconds. Tasks already done or cancelled are left alone.
    func start(_ ids: [Int64], worker: String, lease: Double) throws
    /// Extends by `lease` seconds from now the leases of the tasks `worker` is running.
    func renewLeases(worker: String, lease: Double) throws
    /// Records that a worker received the messages of `ids`.
    func markDelivered(_ ids: [Int64]) throws
    /// Commits outcomes in one transaction: results (once per task: a second result for a task is ignored), boxes,
    /// and task states.
    func record(_ outcomes: [TaskOutcome], provenance: Provenance) throws
    /// Marks tasks of cancelled jobs as cancelled.
    func markCancelled(_ ids: [Int64]) throws
    /// For tasks of jobs that reuse results: copies an earlier result for the same image content and input, made by
    /// `weightsSHA256` with the same settings, marks those tasks done and returns them.
    func reuseResults(for images: [ReadImage], weightsSHA256: String) throws -> [Int64]

    /// Records that the broker confirmed the messages of `ids`.
    func markPublished(_ ids: [Int64]) throws
    /// Claims the queued tasks of live jobs (of `job`, or of every job) whose message was never confirmed, queued at
    /// least `grace` seconds ago, `limit` at a time, oldest first; hands each chunk to `publish` and marks it
    /// published, so that no two publishers send the same task. Returns how many were published.
    func claimUnpublished(
        olderThan grace: Double, job: Int64?, limit: Int, _ publish: ([UnpublishedTask]) throws -> Void
    ) throws -> Int
    /// Ends the leases that expired: cancelled with their job, failed after `maxAttempts` starts, queued again
    /// otherwise.
    func endExpiredLeases(maxAttempts: Int) throws -> [ExpiredLease]
    /// The models with queued tasks whose message was last seen (confirmed or delivered) more than `age` seconds
    /// ago.
    func modelsWithUndelivered(publishedBefore age: Double) throws -> [String]
    /// Marks those tasks of `model` unpublished again (when its queue is empty, their messages are gone).
    func requeueUndelivered(model: String, publishedBefore age: Double) throws -> Int
    /// Runs `body` holding the reconciler's lock for `holder`, or returns nil at once when another holds it.
    func withReconcilerLock<T>(holder: String, _ body: () throws -> T) throws -> T?
    /// Seconds since the reconciler last finished a run, or nil when it never has.
    func reconcilerIdleSeconds() throws -> Double?
    /// Folds the bookkeeping of job counts that has grown (the PostgreSQL store's `task_counts` ledger), so that a job
    /// nobody watches does not leave it for the first reader; returns the jobs compacted. Stores without such
    /// bookkeeping do nothing.
    func compactTaskCounts() throws -> Int
}

extension TaskStore {
    public func compactTaskCounts() throws -> Int { 0 }
}
