// Publishing task messages so that none is lost between the database and the broker: a task's row is committed
// first, its message published with a confirm, and then the row marked published. Whatever dies in between (the
// broker, the process), the reconciler finds the queued tasks without a confirmed message and publishes them
// again; publishers claim the rows they publish, so that two of them never send the same task. A task published
// twice anyway (a confirm lost with its connection) is harmless: the second delivery finds its result and is only
// acknowledged.

/// Publishes and republishes task messages for `enqueue`, `retry` and workers.
public struct TaskOutbox {
    public let publisher: any TaskPublisher

    public init(publisher: any TaskPublisher) {
        self.publisher = publisher
    }

    /// Publishes `tasks` to `model`'s queue, each in its job's lane, one image's tasks of a job in one message
    /// (`TaskMessage.grouping`), and marks each chunk published as soon as the broker confirms it.
    public func publish(_ tasks: [TaskMessage.Task], model: String, store: any TaskStore, round: Int = 0) throws {
        for priority in TaskPriority.lanes {
            for chunk in Self.chunks(TaskMessage.grouping(tasks.filter { $0.priority == priority })) {
                try publisher.publish(chunk, model: model, priority: priority, round: round)
                try store.markPublished(chunk.flatMap(\.taskIDs))
            }
        }
    }

    /// Publishes the unconfirmed tasks of `job` (or of every job) queued at least `grace` seconds ago, a claimed
    /// chunk at a time: several publishers on one job (two `enqueue` runs, a worker's reconciler) never send the
    /// same task twice. Needs no lock.
    /// - Returns: how many were published.
    @discardableResult
    public func publishUnpublished(store: any TaskStore, grace: Double, job: Int64? = nil) throws -> Int {
        try store.claimUnpublished(olderThan: grace, job: job, limit: 1000) { chunk in
            for (model, tasks) in Dictionary(grouping: chunk, by: \.model) {
                for priority in TaskPriority.lanes {
                    let lane = tasks.map(\.task).filter { $0.priority == priority }
                    for messages in Self.chunks(TaskMessage.grouping(lane)) {
                        try publisher.publish(messages, model: model, priority: priority, round: 0)
                    }
                }
            }
        }
    }

    /// What one reconciler run did.
    public struct Reconciled: Sendable, Equatable {
        /// Running tasks whose lease had expired, with the worker that held each and what became of them.
        public var expired: [ExpiredLease] = []
        /// Queued tasks whose message was last seen long ago, with their queue empty: published again.
        public var undelivered = 0
        /// Messages published for tasks that had none.
        public var published = 0
        /// Jobs whose count bookkeeping was compacted.
        public var compacted = 0

        public init() {}
    }

    /// The reconciler, one at a time across workers: ends the leases that expired (a task started `maxAttempts`
    /// times fails), marks for publishing again the queued tasks whose message was last seen more than
    /// `undeliveredAfter` seconds ago while their model's queue is empty (a purged queue), publishes every task
    /// without a confirmed message queued at least `grace` seconds ago, and compacts the job counts' bookkeeping.
    ///
    /// - Returns: what it did, or nil when another reconciler holds the lock.
    public func reconcile(
        store: any TaskStore, grace: Double, undeliveredAfter: Double, maxAttempts: Int, holder: String
    ) throws -> Reconciled? {
        try store.withReconcilerLock(holder: holder) {
            var done = Reconciled()
            done.expired = try store.endExpiredLeases(maxAttempts: maxAttempts)
            for model in try store.modelsWithUndelivered(publishedBefore: undeliveredAfter)
            where try publisher.queueState(model: model).ready == 0 {
                done.undelivered += try store.requeueUndelivered(model: model, publishedBefore: undeliveredAfter)
            }
            done.published = try publishUnpublished(store: store, grace: grace)
            done.compacted = try store.compactTaskCounts()
            return done
        }
    }

    /// Messages in runs of about a thousand tasks, one confirm each.
    static func chunks(_ messages: [TaskMessage]) -> [[TaskMessage]] {
        var chunks: [[TaskMessage]] = [], current: [TaskMessage] = [], count = 0
        for message in messages {
            if count >= 1000 {
                chunks.append(current)
                current = []
                count = 0
            }
            current.append(message)
            count += message.taskIDs.count
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }
}
