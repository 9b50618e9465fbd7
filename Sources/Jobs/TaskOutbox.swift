// Publishing task messages so that none is lost between the database and the broker: a task's row is committed
// first, its message published with a confirm, and then the row marked published. Whatever dies in between (the
// broker, the process), the reconciler finds the queued tasks without a confirmed message and publishes them
// again. A task published twice is harmless: the second delivery finds its result and is only acknowledged.

/// Publishes and republishes task messages for `enqueue`, `retry` and workers.
public struct TaskOutbox {
    public let publisher: any TaskPublisher

    public init(publisher: any TaskPublisher) {
        self.publisher = publisher
    }

    /// Publishes `tasks` to `model`'s queue, one image's tasks of a job in one message (`TaskMessage.grouping`),
    /// and marks each chunk published as soon as the broker confirms it.
    public func publish(_ tasks: [TaskMessage.Task], model: String, store: any TaskStore, round: Int = 0) throws {
        let messages = TaskMessage.grouping(tasks)
        var start = 0
        while start < messages.count {
            // About a thousand tasks per confirm and commit.
            var end = start, count = 0
            while end < messages.count && count < 1000 {
                count += messages[end].taskIDs.count
                end += 1
            }
            let chunk = Array(messages[start..<end])
            try publisher.publish(chunk, model: model, round: round)
            try store.markPublished(chunk.flatMap(\.taskIDs))
            start = end
        }
    }

    /// Publishes the unconfirmed tasks of `job` (or of every job) queued at least `grace` seconds ago, a chunk at a
    /// time, holding the reconciler's lock.
    ///
    /// - Returns: how many were published, or nil when another reconciler holds the lock.
    @discardableResult
    public func reconcile(store: any TaskStore, grace: Double, job: Int64? = nil) throws -> Int? {
        try store.withReconcilerLock {
            var published = 0
            while true {
                let stranded = try store.unpublished(olderThan: grace, job: job, limit: 5000)
                for (model, tasks) in Dictionary(grouping: stranded, by: \.model) {
                    try publish(tasks.map(\.task), model: model, store: store)
                }
                published += stranded.count
                if stranded.count < 5000 { return published }
            }
        }
    }
}
