// The outbox side of the task table: which tasks still need their queue message, claimed a chunk at a time so that
// no two publishers send the same task, and marked published once the broker has confirmed it. The reconciler's
// other work: leases that expired, and messages published long ago and never delivered. One reconciler at a time
// holds the lease on the `reconciler` row, which only workers may update.

import Jobs

extension PostgresJobStore {
    /// Records that the broker confirmed the messages of `ids`.
    public func markPublished(_ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try connection.execute(
            """
            UPDATE tasks SET published_at = now()
            WHERE id = ANY(\(PostgresArray(ids))::bigint[]) AND published_at IS NULL
            """)
    }

    /// Claims the queued tasks of jobs not cancelled (of `job`, or of every job) whose message was never confirmed,
    /// queued at least `grace` seconds ago and not waiting to read their image again (`retry_at`), `limit` at a time
    /// and oldest first, and hands each chunk to `publish`
    /// inside a transaction that holds the chunk's rows: another publisher skips them, and finds them published once
    /// the transaction commits. A chunk `publish` throws on stays unpublished.
    /// - Returns: how many tasks were published.
    public func claimUnpublished(
        olderThan grace: Double, job: Int64?, limit: Int, _ publish: ([UnpublishedTask]) throws -> Void
    ) throws -> Int {
        var published = 0
        while true {
            let chunk = try connection.transaction {
                // One write per row: marking the chunk published locks it (another publisher skips it), and the
                // mark is undone with the transaction when publishing fails.
                let claimed = try connection.execute(
                    """
                    UPDATE tasks t SET published_at = now() FROM jobs j
                    WHERE j.id = t.job_id AND t.id IN (
                        SELECT c.id FROM tasks c JOIN jobs cj ON cj.id = c.job_id
                        WHERE c.published_at IS NULL AND c.status = 'queued' AND cj.cancelled_at IS NULL
                          AND c.enqueued_at <= now() - make_interval(secs => \(grace))
                          AND (c.retry_at IS NULL OR c.retry_at <= now())
                          AND (\(job.map(Int.init))::bigint IS NULL OR c.job_id = \(job.map(Int.init))::bigint)
                        ORDER BY c.enqueued_at, c.id LIMIT \(limit)
                        FOR UPDATE OF c SKIP LOCKED)
                    RETURNING t.id, t.job_id, t.image_uri, j.model, j.priority
                    """
                ).map {
                    UnpublishedTask(
                        task: TaskMessage.Task(
                            taskID: Int64(try $0.int("id")), jobID: Int64(try $0.int("job_id")),
                            imageURI: try $0.string("image_uri"),
                            priority: TaskPriority(rawValue: try $0.string("priority")) ?? .normal),
                        model: try $0.string("model"))
                }.sorted { $0.task.taskID < $1.task.taskID }
                guard !claimed.isEmpty else { return 0 }
                try publish(claimed)
                return claimed.count
            }
            published += chunk
            if chunk < limit { return published }
        }
    }

    /// Ends the leases that expired (their worker died or hangs): a task of a cancelled job is cancelled, a task the
    /// model has started `maxAttempts` times fails with the reason (it may be what hangs workers), and the rest are
    /// queued again, to be published again.
    /// - Returns: the tasks, with the worker that held each and the status they now have.
    public func endExpiredLeases(maxAttempts: Int) throws -> [ExpiredLease] {
        try connection.execute(
            """
            UPDATE tasks t SET
                status = CASE WHEN j.cancelled_at IS NOT NULL THEN 'cancelled'
                              WHEN t.attempts >= \(maxAttempts) THEN 'failed' ELSE 'queued' END,
                last_error = CASE WHEN j.cancelled_at IS NULL AND t.attempts >= \(maxAttempts)
                    THEN 'its lease expired after the model started on it ' || t.attempts || ' time(s), last on worker '
                         || coalesce(t.worker, '?') || ' (the worker died or hung each time)'
                    ELSE t.last_error END,
                finished_at = CASE WHEN j.cancelled_at IS NOT NULL OR t.attempts >= \(maxAttempts) THEN now() END,
                published_at = NULL, lease_expires_at = NULL
            FROM jobs j
            WHERE j.id = t.job_id AND t.status = 'running' AND t.lease_expires_at < now()
            RETURNING t.id, coalesce(t.worker, '') AS worker, t.status
            """
        ).map {
            ExpiredLease(
                taskID: Int64(try $0.int("id")), worker: try $0.string("worker"),
                status: TaskStatus(rawValue: try $0.string("status")) ?? .queued)
        }
    }

    /// The models with queued tasks whose message was last seen (confirmed by the broker, or delivered to a worker)
    /// more than `age` seconds ago.
    public func modelsWithUndelivered(publishedBefore age: Double) throws -> [String] {
        try connection.execute(
            """
            SELECT DISTINCT j.model FROM tasks t JOIN jobs j ON j.id = t.job_id
            WHERE t.status = 'queued' AND j.cancelled_at IS NULL
              AND greatest(t.published_at, t.delivered_at) < now() - make_interval(secs => \(age))
              AND (t.retry_at IS NULL OR t.retry_at <= now())
            """
        ).map { try $0.string("model") }
    }

    /// Marks unpublished, to be published again, `model`'s queued tasks whose message was last seen more than `age`
    /// seconds ago. Call it only when the model's queue holds no ready message: then those messages are gone (a
    /// purged queue, a dead letter dropped past its limit), since a worker holds none longer than the broker's
    /// consumer timeout.
    /// - Returns: how many.
    public func requeueUndelivered(model: String, publishedBefore age: Double) throws -> Int {
        try connection.execute(
            """
            UPDATE tasks t SET published_at = NULL FROM jobs j
            WHERE j.id = t.job_id AND j.model = \(model) AND j.cancelled_at IS NULL AND t.status = 'queued'
              AND greatest(t.published_at, t.delivered_at) < now() - make_interval(secs => \(age))
              AND (t.retry_at IS NULL OR t.retry_at <= now())
            RETURNING t.id
            """
        ).count
    }

    /// Runs `body` holding the reconciler's lease for `holder` (ten minutes, released at the end), or returns nil at
    /// once when another holder's lease is current. Taking it needs UPDATE on `reconciler`, which only workers have.
    public func withReconcilerLock<T>(holder: String, _ body: () throws -> T) throws -> T? {
        let taken = try connection.execute(
            """
            UPDATE reconciler SET holder = \(holder), held_until = now() + interval '10 minutes'
            WHERE id = 1 AND (held_until IS NULL OR held_until < now() OR holder = \(holder))
            RETURNING id
            """)
        guard !taken.isEmpty else { return nil }
        defer {
            _ = try? connection.execute(
                "UPDATE reconciler SET held_until = NULL WHERE id = 1 AND holder = \(holder)")
        }
        let value = try body()
        try connection.execute("UPDATE reconciler SET last_run_at = now() WHERE id = 1 AND holder = \(holder)")
        return value
    }

    /// Compacts the `task_counts` ledger of every job with more than `countRowsBeforeCompacting` rows in it (the
    /// reconciler's part; readers compact the jobs they read).
    public func compactTaskCounts() throws -> Int {
        try connection.execute(
            """
            SELECT compact_task_counts(job_id) FROM task_counts
            GROUP BY job_id HAVING count(*) > \(Self.countRowsBeforeCompacting)
            """
        ).count
    }

    /// Seconds since the reconciler last finished a run, or nil when it never has.
    public func reconcilerIdleSeconds() throws -> Double? {
        try connection.execute(
            "SELECT extract(epoch FROM now() - last_run_at)::float8 AS idle FROM reconciler WHERE id = 1"
        ).first.flatMap { try? $0.double("idle") }
    }
}
