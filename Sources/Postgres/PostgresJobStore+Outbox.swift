// The outbox side of the task table: which tasks still need their queue message, and marking them published once
// the broker has confirmed it. One reconciler at a time holds an advisory lock.

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

    /// Queued tasks of jobs not cancelled (of `job`, or of every job) whose message was never confirmed, queued at
    /// least `grace` seconds ago (younger ones may still be on their way from `enqueue`), oldest first.
    public func unpublished(olderThan grace: Double, job: Int64? = nil, limit: Int) throws -> [UnpublishedTask] {
        try connection.execute(
            """
            SELECT t.id, t.job_id, t.image_uri, j.model FROM tasks t JOIN jobs j ON j.id = t.job_id
            WHERE t.published_at IS NULL AND t.status = 'queued' AND j.cancelled_at IS NULL
              AND t.enqueued_at <= now() - make_interval(secs => \(grace))
              AND (\(job.map(Int.init))::bigint IS NULL OR t.job_id = \(job.map(Int.init))::bigint)
            ORDER BY t.enqueued_at, t.id LIMIT \(limit)
            """
        ).map {
            UnpublishedTask(
                task: TaskMessage.Task(
                    taskID: Int64(try $0.int("id")), jobID: Int64(try $0.int("job_id")),
                    imageURI: try $0.string("image_uri")),
                model: try $0.string("model"))
        }
    }

    /// Runs `body` holding the reconciler's session advisory lock, or returns nil at once when another session
    /// holds it.
    public func withReconcilerLock<T>(_ body: () throws -> T) throws -> T? {
        let key = 0x696E_666D_6F75_7462  // "infmoutb"
        guard try connection.execute("SELECT pg_try_advisory_lock(\(key)) AS got").first?.bool("got") == true else {
            return nil
        }
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(\(key))") }
        return try body()
    }
}
