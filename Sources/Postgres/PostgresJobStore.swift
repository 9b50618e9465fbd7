// Jobs and tasks in PostgreSQL: creating jobs, adding tasks idempotently in bulk, and the summaries the CLI shows.

import Jobs

/// A task to add: an image and its text input (question or expression; empty for captions).
public struct NewTask: Sendable, Hashable {
    public var imageURI: String
    public var inputText: String
    /// The manifest line's other fields, a JSON object; nil for none.
    public var metadataJSON: String?

    public init(imageURI: String, inputText: String = "", metadataJSON: String? = nil) {
        self.imageURI = imageURI
        self.inputText = inputText
        self.metadataJSON = metadataJSON
    }
}

/// A job with its task counts.
public struct JobSummary: Sendable, Codable, Equatable {
    public var id: Int64
    public var name: String
    public var taskKind: String
    public var model: String
    public var createdAt: String
    public var cancelled: Bool
    /// The queue lane of its tasks: high, normal or low.
    public var priority: String = TaskPriority.normal.rawValue
    public var counts: [String: Int]

    public var total: Int { counts.values.reduce(0, +) }
    /// Whether every task has ended (done, failed or cancelled): true for a job that has no task, such as one whose
    /// every image `enqueue --skip-done` left out.
    public var isFinished: Bool { (counts["queued"] ?? 0) + (counts["running"] ?? 0) == 0 }

    enum CodingKeys: String, CodingKey {
        case id, name, taskKind = "task_kind", model, createdAt = "created_at", cancelled, priority, counts
    }
}

/// The mean worker time of a task on one device, from `results` earlier results.
public struct TaskCost: Sendable, Equatable {
    public var device: String
    public var results: Int
    public var milliseconds: Double

    public init(device: String, results: Int, milliseconds: Double) {
        self.device = device
        self.results = results
        self.milliseconds = milliseconds
    }
}

/// Job and task rows, over one connection. Not thread-safe, like the connection.
public struct PostgresJobStore {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// The newest migration this code was built with (the highest NNNN in `migrations/`). A worker's inserts name
    /// its columns (0014's `results.output_logprob`, for one), so a worker refuses an older schema at once rather
    /// than failing every batch it records.
    public static let schemaVersion = 15

    /// Throws `PostgresError.refused` when the database has not had every migration up to `schemaVersion` applied.
    public func checkSchema() throws {
        let table = try connection.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").first
        let version =
            try table?.bool("present") == true
            ? try connection.execute("SELECT coalesce(max(version), 0) AS version FROM schema_migrations").first?
                .int("version") ?? 0 : 0
        guard version >= Self.schemaVersion else {
            throw PostgresError.refused(
                reason: "the database's schema is at migration \(version), and this build writes the columns of "
                    + "migration \(Self.schemaVersion): run `infmllm migrate` (with this build's migrations) first")
        }
    }

    /// The job called `name`, created with these settings if it does not exist.
    /// - Returns: its id, and whether this call created it.
    /// - Throws: `PostgresError.refused` when the name reads as a number (commands would take it for a job id), or
    ///   a job of that name exists with another task kind, model, prompt template or decoding parameters (its
    ///   tasks run with its own: new ones would silently not get the ones asked for), or was cancelled (its tasks
    ///   would never be published).
    /// - Parameter priority: the lane of the job's tasks; for an existing job, its lane from now on (nil: as it is).
    /// - Parameter reuseResults: reuse earlier results for the same image content (`--skip-done`); turned on for
    ///   an existing job when asked, never off.
    public func openJob(
        name: String, kind: TaskKind, model: String, promptTemplate: String?, generationJSON: String,
        reuseResults: Bool = false, priority: TaskPriority? = nil
    ) throws -> (id: Int64, created: Bool) {
        guard Int64(name) == nil else {
            throw PostgresError.refused(
                reason: "a job name that reads as a number (\"\(name)\") would be taken for a job id; "
                    + "use a name with a letter in it")
        }
        if let row = try connection.execute(
            """
            INSERT INTO jobs (name, task_kind, model, prompt_template, generation, reuse_results, priority)
            VALUES (\(name), \(kind.rawValue), \(model), \(promptTemplate), \(generationJSON)::jsonb, \(reuseResults),
                    \((priority ?? .normal).rawValue))
            ON CONFLICT (name) DO NOTHING RETURNING id
            """
        ).first {
            return (Int64(try row.int("id")), true)
        }
        guard
            let row = try connection.execute(
                """
                SELECT id, task_kind, model, prompt_template IS NOT DISTINCT FROM \(promptTemplate) AS same_template,
                       generation = \(generationJSON)::jsonb AS same_generation, generation::text AS generation,
                       cancelled_at IS NOT NULL AS cancelled
                FROM jobs WHERE name = \(name)
                """
            ).first
        else {
            throw PostgresError.unexpectedResult(sql: "jobs", message: "job \(name) vanished while being opened")
        }
        let existingKind = try row.string("task_kind"), existingModel = try row.string("model")
        let refuse = { (reason: String) in PostgresError.refused(reason: "job \"\(name)\" \(reason)") }
        guard existingKind == kind.rawValue, existingModel == model else {
            throw refuse("already exists for \(existingKind) with model \(existingModel); use another --job name")
        }
        guard try row.bool("same_template") else {
            throw refuse("already exists with another prompt template; use the same --prompt or another --job name")
        }
        guard try row.bool("same_generation") else {
            throw refuse(
                "already exists with other decoding settings (\(try row.string("generation"))), which its tasks run "
                    + "with; give the same flags or use another --job name")
        }
        guard !(try row.bool("cancelled")) else {
            throw refuse("was cancelled: tasks added to it would never run; use another --job name")
        }
        if reuseResults {
            try connection.execute("UPDATE jobs SET reuse_results = true WHERE id = \(Int64(try row.int("id")))")
        }
        if let priority {
            // Tasks published from now on travel in the new lane; those already on the queue stay in theirs.
            try connection.execute(
                "UPDATE jobs SET priority = \(priority.rawValue) WHERE id = \(Int64(try row.int("id")))")
        }
        return (Int64(try row.int("id")), false)
    }

    /// Adds the tasks not already in the job (same image and input), in bulk; returns the new tasks in id order.
    public func addTasks(_ tasks: [NewTask], to job: Int64, chunkSize: Int = 5000) throws -> [TaskMessage.Task] {
        var added: [TaskMessage.Task] = []
        for start in stride(from: 0, to: tasks.count, by: chunkSize) {
            let chunk = tasks[start..<min(start + chunkSize, tasks.count)]
            let rows = try connection.execute(
                """
                INSERT INTO tasks (job_id, image_uri, input_text, metadata)
                SELECT \(job), uri, input, nullif(metadata, '')::jsonb
                FROM unnest(\(PostgresArray(chunk.map(\.imageURI)))::text[], \(PostgresArray(chunk.map(\.inputText)))::text[],
                            \(PostgresArray(chunk.map { $0.metadataJSON ?? "" }))::text[])
                     AS t(uri, input, metadata)
                ON CONFLICT (job_id, image_uri, input_text) DO NOTHING
                RETURNING id, image_uri, (SELECT priority FROM jobs WHERE id = \(job)) AS priority
                """)
            added += try rows.map {
                TaskMessage.Task(
                    taskID: Int64(try $0.int("id")), jobID: job, imageURI: try $0.string("image_uri"),
                    priority: TaskPriority(rawValue: try $0.string("priority")) ?? .normal)
            }.sorted { $0.taskID < $1.taskID }
        }
        return added
    }

    /// What a task of this kind cost on each device, from the newest results (at most `sample`, the newest tasks
    /// first) of jobs for `model` with the same task kind, prompt template and decoding parameters: the mean worker
    /// time of a computed result (its share of the vision pass and of the decoder steps it took part in), for
    /// `enqueue --dry-run`'s estimate. Results copied from earlier ones are left out.
    public func taskCosts(
        kind: TaskKind, model: String, promptTemplate: String?, generationJSON: String, sample: Int = 1000
    ) throws -> [TaskCost] {
        try connection.execute(
            """
            SELECT device, count(*) AS results, avg(ms) AS ms
            FROM (SELECT r.device, (r.timings_ms ->> 'vision')::float8 + (r.timings_ms ->> 'generate')::float8 AS ms
                  FROM results r JOIN jobs j ON j.id = r.job_id
                  WHERE j.model = \(model) AND j.task_kind = \(kind.rawValue)
                    AND j.prompt_template IS NOT DISTINCT FROM \(promptTemplate)
                    AND j.generation = \(generationJSON)::jsonb AND r.reused_from IS NULL
                    AND jsonb_typeof(r.timings_ms -> 'vision') = 'number'
                    AND jsonb_typeof(r.timings_ms -> 'generate') = 'number'
                  ORDER BY r.task_id DESC LIMIT \(sample)) newest
            GROUP BY device ORDER BY device
            """
        ).map {
            TaskCost(device: try $0.string("device"), results: try $0.int("results"), milliseconds: try $0.double("ms"))
        }
    }

    /// The tasks among `tasks` (image and text) with no result yet in any job of the same kind for `model`, with
    /// the same prompt template and decoding parameters (`generationJSON`, compared as JSON): a caption with other
    /// settings, or a VQA answer to a question now asked in a chat job, is not this task's result.
    public func withoutResults(
        _ tasks: [NewTask], kind: TaskKind, model: String, promptTemplate: String?, generationJSON: String
    ) throws -> [NewTask] {
        guard !tasks.isEmpty else { return [] }
        let done = try connection.execute(
            """
            SELECT DISTINCT t.image_uri, t.input_text
            FROM tasks t JOIN results r ON r.task_id = t.id JOIN jobs j ON j.id = t.job_id
            WHERE j.model = \(model) AND j.task_kind = \(kind.rawValue)
              AND j.prompt_template IS NOT DISTINCT FROM \(promptTemplate) AND j.generation = \(generationJSON)::jsonb
              AND t.image_uri = ANY(\(PostgresArray(tasks.map(\.imageURI)))::text[])
            """
        ).map { [try $0.string("image_uri"), try $0.string("input_text")] }
        let doneSet = Set(done)
        return tasks.filter { !doneSet.contains([$0.imageURI, $0.inputText]) }
    }

    /// Every job, newest first, with task counts by status.
    public func jobs(limit: Int = 100) throws -> [JobSummary] {
        try summaries(where: "TRUE", limit: limit)
    }

    /// One job by id or name.
    public func job(_ reference: String) throws -> JobSummary? {
        if let id = Int64(reference) {
            return try summaries(where: "j.id = \(id)", limit: 1).first
        }
        return try summaries(where: "j.name = \(reference)", limit: 1).first
    }

    /// A job's ledger rows (`task_counts`) above which reading its counts folds them into one per state first.
    static let countRowsBeforeCompacting = 64

    /// The jobs matching `condition`, newest first, with their task counts from the `task_counts` ledger (a few rows
    /// a job, whatever its size); a job whose ledger has grown is compacted first.
    private func summaries(where condition: SQL, limit: Int) throws -> [JobSummary] {
        // The condition's text and bindings are spliced as a unit, keeping its $n numbering.
        var sql: SQL = """
            SELECT j.id, j.name, j.task_kind, j.model, to_char(j.created_at, 'YYYY-MM-DD"T"HH24:MI:SSOF') AS created_at,
                   j.cancelled_at IS NOT NULL AS cancelled, j.priority, c.ledger_rows,
                   coalesce(c.queued, 0) AS queued, coalesce(c.running, 0) AS running, coalesce(c.done, 0) AS done,
                   coalesce(c.failed, 0) AS failed, coalesce(c.cancelled, 0) AS cancelled_tasks
            FROM jobs j CROSS JOIN LATERAL (
                SELECT count(*) AS ledger_rows,
                       sum(tasks) FILTER (WHERE status = 'queued') AS queued,
                       sum(tasks) FILTER (WHERE status = 'running') AS running,
                       sum(tasks) FILTER (WHERE status = 'done') AS done,
                       sum(tasks) FILTER (WHERE status = 'failed') AS failed,
                       sum(tasks) FILTER (WHERE status = 'cancelled') AS cancelled
                FROM task_counts WHERE job_id = j.id) c
            WHERE
            """
        sql.append(" ")
        sql.append(condition)
        sql.append(" ORDER BY j.id DESC LIMIT \(limit)")
        return try connection.execute(sql).map { row in
            let id = Int64(try row.int("id"))
            // A read-only connection (a replica) cannot compact: it reads the longer sum instead.
            if try row.int("ledger_rows") > Self.countRowsBeforeCompacting {
                _ = try? connection.execute("SELECT compact_task_counts(\(id))")
            }
            return JobSummary(
                id: id, name: try row.string("name"), taskKind: try row.string("task_kind"),
                model: try row.string("model"), createdAt: try row.string("created_at"),
                cancelled: try row.bool("cancelled"), priority: try row.string("priority"),
                counts: [
                    "queued": try row.int("queued"), "running": try row.int("running"), "done": try row.int("done"),
                    "failed": try row.int("failed"), "cancelled": try row.int("cancelled_tasks"),
                ])
        }
    }

    /// Tasks of `job` ended (done or failed) per second over the last `window` seconds, or since the first of them
    /// ended if that was later; nil until two have ended in it. What `progress` starts its estimate from.
    public func recentEndRate(job: Int64, window: Double = 600) throws -> Double? {
        let row = try connection.execute(
            """
            SELECT count(*) AS n, extract(epoch FROM now() - min(finished_at))::float8 AS covered FROM tasks
            WHERE job_id = \(job) AND status IN ('done', 'failed')
              AND finished_at > now() - make_interval(secs => \(window))
            """
        ).first
        guard let row, try row.int("n") >= 2 else { return nil }
        let covered = try row.double("covered")
        return covered > 0 ? Double(try row.int("n")) / covered : nil
    }

    /// The queued tasks of `job` waiting to read their image again (a reason that may pass kept them from it), and
    /// the seconds until the first of them may be published.
    public func waitingToRead(job: Int64) throws -> (count: Int, firstIn: Double?) {
        let row = try connection.execute(
            """
            SELECT count(*) AS n, extract(epoch FROM min(retry_at) - now())::float8 AS first_in FROM tasks
            WHERE job_id = \(job) AND status = 'queued' AND retry_at > now()
            """
        ).first
        return (try row?.int("n") ?? 0, try row?.text("first_in").flatMap(Double.init))
    }

    /// The reasons tasks of `job` failed, most common first.
    public func failureReasons(job: Int64, limit: Int = 20) throws -> [(reason: String, count: Int)] {
        try connection.execute(
            """
            SELECT coalesce(last_error, 'unknown') AS reason, count(*) AS n FROM tasks
            WHERE job_id = \(job) AND status = 'failed' GROUP BY 1 ORDER BY n DESC, reason LIMIT \(limit)
            """
        ).map { (try $0.string("reason"), try $0.int("n")) }
    }
}
