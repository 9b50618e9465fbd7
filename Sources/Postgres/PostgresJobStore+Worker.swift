// What workers read and write (`TaskStore`): task rows with their job's settings, claims, and outcomes committed
// in one transaction (a redelivered task never gets a second result).

import Foundation
import Jobs

extension PostgresJobStore: TaskStore {
    public var isHealthy: Bool { connection.isHealthy }

    /// The rows of `ids` with their jobs' settings; ids with no row (a deleted job) are absent.
    public func tasks(_ ids: [Int64]) throws -> [Int64: TaskRow] {
        guard !ids.isEmpty else { return [:] }
        var rows: [Int64: TaskRow] = [:]
        for row in try connection.execute(
            """
            SELECT t.id, t.job_id, t.image_uri, t.input_text, t.status, j.task_kind, j.prompt_template,
                   j.generation::text AS generation, j.cancelled_at IS NOT NULL AS cancelled, j.model,
                   t.attempts, t.worker, j.reuse_results, j.priority, t.read_retries,
                   coalesce(t.retry_at > now(), false) AS waits_to_read
            FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE t.id = ANY(\(PostgresArray(ids))::bigint[])
            """)
        {
            let id = Int64(try row.int("id"))
            guard let status = TaskStatus(rawValue: try row.string("status")),
                let kind = TaskKind(rawValue: try row.string("task_kind"))
            else {
                throw PostgresError.unexpectedResult(sql: "tasks", message: "task \(id) has an unknown status or kind")
            }
            rows[id] = TaskRow(
                taskID: id, jobID: Int64(try row.int("job_id")), imageURI: try row.string("image_uri"),
                inputText: try row.string("input_text"), status: status, taskKind: kind,
                promptTemplate: try row.text("prompt_template"), generationJSON: try row.string("generation"),
                jobCancelled: try row.bool("cancelled"), jobModel: try row.string("model"),
                attempts: try row.int("attempts"), worker: try row.text("worker"),
                reuseResults: try row.bool("reuse_results"),
                priority: TaskPriority(rawValue: try row.string("priority")) ?? .normal,
                readRetries: try row.int("read_retries"), waitsToRead: try row.bool("waits_to_read"))
        }
        return rows
    }

    /// Marks tasks as started by `worker`, right before the model runs on them: running, one more attempt, and a
    /// lease of `lease` seconds. Tasks already done or cancelled are left alone.
    public func start(_ ids: [Int64], worker: String, lease: Double) throws {
        guard !ids.isEmpty else { return }
        try connection.execute(
            """
            UPDATE tasks SET status = 'running', attempts = attempts + 1, worker = \(worker), started_at = now(),
                lease_expires_at = now() + make_interval(secs => \(lease))
            WHERE id = ANY(\(PostgresArray(ids))::bigint[]) AND status NOT IN ('done', 'cancelled')
            """)
    }

    /// Extends by `lease` seconds from now the leases of the tasks `worker` is running.
    public func renewLeases(worker: String, lease: Double) throws {
        try connection.execute(
            """
            UPDATE tasks SET lease_expires_at = now() + make_interval(secs => \(lease))
            WHERE worker = \(worker) AND status = 'running'
            """)
    }

    /// Records that a worker received the messages of `ids`; rows another session holds (a publisher between its
    /// claim and its commit) are skipped rather than waited for.
    public func markDelivered(_ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try connection.execute(
            """
            UPDATE tasks SET delivered_at = now() WHERE id IN (
                SELECT id FROM tasks WHERE id = ANY(\(PostgresArray(ids))::bigint[]) AND status = 'queued'
                FOR UPDATE SKIP LOCKED)
            """)
    }

    /// For tasks of jobs that reuse results: copies the earliest result of another task with the same image content
    /// and text input, computed (not itself reused) with the weights `weightsSHA256` and the same task kind, prompt
    /// template and decoding parameters, with its boxes, and marks those tasks done; returns their ids. One
    /// transaction.
    public func reuseResults(for images: [ReadImage], weightsSHA256: String) throws -> [Int64] {
        guard !images.isEmpty else { return [] }
        let read = try Self.json(
            images.map {
                [
                    "task_id": $0.taskID, "sha": $0.sha256, "width": $0.width, "height": $0.height,
                    "orientation": $0.orientation as Any,
                ]
            })
        return try connection.transaction {
            try connection.execute(
                """
                UPDATE tasks t SET image_sha256 = i.sha, image_width = i.width, image_height = i.height,
                    image_orientation = i.orientation
                FROM jsonb_to_recordset(\(read)::jsonb)
                     AS i(task_id bigint, sha text, width integer, height integer, orientation smallint)
                WHERE t.id = i.task_id AND t.status <> 'done'
                """)
            let reused = try connection.execute(
                """
                INSERT INTO results (task_id, job_id, output_text, output_token_ids, prompt_token_count,
                    output_token_count, model_name, weights_sha256, prompt, decoding, device, worker, timings_ms,
                    reused_from, output_logprob)
                SELECT DISTINCT ON (me.id) me.id, me.job_id, r.output_text, r.output_token_ids, r.prompt_token_count,
                       r.output_token_count, r.model_name, r.weights_sha256, r.prompt, r.decoding, r.device, r.worker,
                       '{}'::jsonb, r.task_id, r.output_logprob
                FROM tasks me
                JOIN jsonb_to_recordset(\(try Self.json(images.map { ["task_id": $0.taskID, "prompt": $0.prompt as Any] }))::jsonb)
                     AS i(task_id bigint, prompt text) ON i.task_id = me.id
                JOIN jobs mj ON mj.id = me.job_id AND mj.reuse_results
                JOIN tasks t ON t.image_sha256 = me.image_sha256 AND t.input_text = me.input_text AND t.id <> me.id
                JOIN results r ON r.task_id = t.id AND r.weights_sha256 = \(weightsSHA256) AND r.reused_from IS NULL
                     AND (i.prompt IS NULL OR r.prompt = i.prompt)
                JOIN jobs j ON j.id = t.job_id AND j.task_kind = mj.task_kind
                     AND j.prompt_template IS NOT DISTINCT FROM mj.prompt_template AND j.generation = mj.generation
                WHERE me.status <> 'done'
                ORDER BY me.id, r.created_at, r.task_id
                ON CONFLICT (task_id) DO NOTHING
                RETURNING task_id, reused_from
                """
            ).map { (Int64(try $0.int("task_id")), Int64(try $0.int("reused_from"))) }
            guard !reused.isEmpty else { return [] }
            let ids = PostgresArray(reused.map(\.0))
            try connection.execute(
                """
                INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
                SELECT r.task_id, b.ordinal, b.x1_norm, b.y1_norm, b.x2_norm, b.y2_norm, b.x1, b.y1, b.x2, b.y2
                FROM results r JOIN result_boxes b ON b.task_id = r.reused_from
                WHERE r.task_id = ANY(\(ids)::bigint[])
                """)
            try connection.execute(
                """
                UPDATE tasks SET status = 'done', last_error = NULL, finished_at = now()
                WHERE id = ANY(\(ids)::bigint[])
                """)
            return reused.map(\.0)
        }
    }

    /// Marks tasks of cancelled jobs as cancelled.
    public func markCancelled(_ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try connection.execute(
            "UPDATE tasks SET status = 'cancelled', finished_at = now() WHERE id = ANY(\(PostgresArray(ids))::bigint[]) AND status <> 'done'"
        )
    }

    /// Commits a batch's outcomes in one transaction: results (once per task), boxes, and task states.
    ///
    /// The batch travels as JSON in bound parameters and is unpacked with `jsonb_to_recordset`, so a batch costs
    /// four statements however large it is.
    public func record(_ outcomes: [TaskOutcome], provenance: Provenance) throws {
        guard !outcomes.isEmpty else { return }
        var results: [[String: Any]] = [], boxes: [[String: Any]] = [], done: [[String: Any]] = [],
            failed: [[String: Any]] = [], later: [[String: Any]] = []
        for outcome in outcomes {
            switch outcome.ending {
            case let .result(text, tokens, logProbability, promptTokens, resultBoxes, prompt, decoding, timings):
                results.append([
                    "task_id": outcome.taskID, "job_id": outcome.jobID, "output_text": text, "tokens": tokens,
                    "logprob": logProbability as Any,
                    "prompt_token_count": promptTokens, "prompt": prompt, "decoding": decoding, "timings": timings,
                ])
                for (ordinal, box) in resultBoxes.enumerated() {
                    boxes.append([
                        "task_id": outcome.taskID, "ordinal": ordinal, "x1n": box.x1, "y1n": box.y1, "x2n": box.x2,
                        "y2n": box.y2,
                        "x1": box.pixelX1, "y1": box.pixelY1, "x2": box.pixelX2, "y2": box.pixelY2,
                    ])
                }
                done.append([
                    "task_id": outcome.taskID, "sha": outcome.imageSHA256 as Any, "width": outcome.imageWidth as Any,
                    "height": outcome.imageHeight as Any, "orientation": outcome.imageOrientation as Any,
                ])
            case let .failed(reason):
                failed.append(["task_id": outcome.taskID, "reason": reason, "sha": outcome.imageSHA256 as Any])
            case let .readLater(reason, after):
                later.append(["task_id": outcome.taskID, "reason": reason, "after": after])
            }
        }
        try connection.transaction {
            var inserted: [Int64] = []
            if !results.isEmpty {
                inserted = try connection.execute(
                    """
                    INSERT INTO results (task_id, job_id, output_text, output_token_ids, prompt_token_count,
                        output_token_count, model_name, weights_sha256, prompt, decoding, device, worker, timings_ms,
                        output_logprob)
                    SELECT r.task_id, r.job_id, r.output_text,
                           ARRAY(SELECT jsonb_array_elements_text(r.tokens)::integer), r.prompt_token_count,
                           jsonb_array_length(r.tokens), \(provenance.modelName), \(provenance.weightsSHA256), r.prompt,
                           r.decoding::jsonb, \(provenance.device), \(provenance.worker), r.timings::jsonb, r.logprob
                    FROM jsonb_to_recordset(\(try Self.json(results))::jsonb) AS r(task_id bigint, job_id bigint,
                         output_text text, tokens jsonb, logprob float8, prompt_token_count integer, prompt text,
                         decoding text, timings text)
                    ON CONFLICT (task_id) DO NOTHING RETURNING task_id
                    """
                ).map { Int64(try $0.int("task_id")) }
            }
            let fresh = Set(inserted)
            let newBoxes = boxes.filter { fresh.contains($0["task_id"] as! Int64) }
            if !newBoxes.isEmpty {
                try connection.execute(
                    """
                    INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
                    SELECT task_id, ordinal, x1n, y1n, x2n, y2n, x1, y1, x2, y2
                    FROM jsonb_to_recordset(\(try Self.json(newBoxes))::jsonb) AS b(task_id bigint, ordinal integer,
                         x1n float8, y1n float8, x2n float8, y2n float8, x1 float8, y1 float8, x2 float8, y2 float8)
                    """)
            }
            if !done.isEmpty {
                // The image a task was read as is the one its result came from: a result that lost to another
                // (the task ran twice, and a URL's content changed between the reads) leaves it as it is, or
                // --skip-done would reuse that result for the other content.
                let marked = done.map { row in
                    var row = row
                    row["fresh"] = fresh.contains(row["task_id"] as! Int64)
                    return row
                }
                try connection.execute(
                    """
                    UPDATE tasks t SET status = 'done', last_error = NULL, finished_at = now(),
                        image_sha256 = CASE WHEN d.fresh THEN coalesce(d.sha, t.image_sha256) ELSE t.image_sha256 END,
                        image_width = CASE WHEN d.fresh THEN coalesce(d.width, t.image_width) ELSE t.image_width END,
                        image_height =
                            CASE WHEN d.fresh THEN coalesce(d.height, t.image_height) ELSE t.image_height END,
                        image_orientation = CASE WHEN d.fresh AND d.width IS NOT NULL THEN d.orientation
                                                 ELSE t.image_orientation END
                    FROM jsonb_to_recordset(\(try Self.json(marked))::jsonb)
                         AS d(task_id bigint, sha text, width integer, height integer, orientation smallint,
                              fresh boolean)
                    WHERE t.id = d.task_id
                    """)
            }
            if !failed.isEmpty {
                try connection.execute(
                    """
                    UPDATE tasks t SET status = 'failed', last_error = f.reason, finished_at = now(),
                        image_sha256 = coalesce(f.sha, t.image_sha256)
                    FROM jsonb_to_recordset(\(try Self.json(failed))::jsonb) AS f(task_id bigint, reason text, sha text)
                    WHERE t.id = f.task_id AND t.status <> 'done'
                    """)
            }
            if !later.isEmpty {
                // Queued again, unpublished until `retry_at`: the reconciler publishes it then (a redelivery of its
                // old message meanwhile is settled without a read, `TaskRow.waitsToRead`). Only a queued task: one
                // that another worker runs (a second message of it) or that was cancelled meanwhile stays as it is.
                try connection.execute(
                    """
                    UPDATE tasks t SET last_error = l.reason, read_retries = t.read_retries + 1,
                        retry_at = now() + make_interval(secs => l.after), published_at = NULL
                    FROM jsonb_to_recordset(\(try Self.json(later))::jsonb) AS l(task_id bigint, reason text, after float8)
                    WHERE t.id = l.task_id AND t.status = 'queued'
                    """)
            }
        }
    }

    private static func json(_ rows: [[String: Any]]) throws -> String {
        let cleaned = rows.map { row in
            row.mapValues { value -> Any in
                if let optional = value as? OptionalProtocol, optional.isNone { return NSNull() }
                if let text = value as? String { return text.storable }
                return value
            }
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: cleaned), as: UTF8.self)
    }

    /// Failed tasks of `job` back to queued, to be published again, as new tasks: no error, no attempts counted
    /// against the limits that fail a task the model started on too often, and `enqueued_at` now, so that the
    /// reconciler's grace period counts from the retry. With `text`, only the tasks whose failure reason contains
    /// it (a fetch that timed out, say, and not a file that is no image), the reason as `failureReasons` gives it:
    /// `unknown` where none was recorded. Returns them in id order; none when the job was cancelled (its tasks are
    /// never published).
    public func requeueFailed(job: Int64, reasonContaining text: String? = nil) throws -> [TaskMessage.Task] {
        try connection.execute(
            """
            UPDATE tasks t SET status = 'queued', last_error = NULL, attempts = 0, published_at = NULL,
                   enqueued_at = now(), read_retries = 0, retry_at = NULL
            FROM jobs j
            WHERE t.job_id = \(job) AND t.status = 'failed' AND j.id = t.job_id AND j.cancelled_at IS NULL
              AND (\(text)::text IS NULL OR strpos(coalesce(t.last_error, 'unknown'), \(text)::text) > 0)
            RETURNING t.id, t.image_uri, j.priority
            """
        ).map {
            TaskMessage.Task(
                taskID: Int64(try $0.int("id")), jobID: job, imageURI: try $0.string("image_uri"),
                priority: TaskPriority(rawValue: try $0.string("priority")) ?? .normal)
        }.sorted { $0.taskID < $1.taskID }
    }

    /// Sets `job`'s lane and marks its queued tasks to be published again (in that lane); returns how many. A
    /// cancelled job's tasks are never published, so none are marked.
    public func setPriority(job: Int64, _ priority: TaskPriority) throws -> Int {
        try connection.transaction {
            try connection.execute("UPDATE jobs SET priority = \(priority.rawValue) WHERE id = \(job)")
            return try connection.execute(
                """
                UPDATE tasks t SET published_at = NULL FROM jobs j
                WHERE t.job_id = \(job) AND t.status = 'queued' AND j.id = t.job_id AND j.cancelled_at IS NULL
                RETURNING t.id
                """
            ).count
        }
    }

    /// Cancels `job`: queued tasks become cancelled now; workers cancel the ones they receive later.
    public func cancel(job: Int64) throws -> Int {
        try connection.transaction {
            try connection.execute("UPDATE jobs SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = \(job)")
            return try connection.execute(
                "UPDATE tasks SET status = 'cancelled', finished_at = now() WHERE job_id = \(job) AND status = 'queued'"
            ).affectedRowCount
        }
    }
}

extension PostgresJobStore {
    /// What deleting a job removed.
    public struct Deleted: Sendable, Equatable, Encodable {
        public let tasks: Int
        public let results: Int
    }

    /// Deletes `job` with its tasks, results and boxes, in one transaction; refused while any of its tasks is queued
    /// or running (cancel it first; a worker's result for a deleted task would have nowhere to go). Results of
    /// other jobs copied from its tasks (`reused_from`) stay, no longer naming their source. Messages still queued
    /// for its tasks are dropped by the workers that receive them. The client role may not delete: it takes the
    /// login that owns the tables.
    public func delete(job: Int64) throws -> Deleted {
        // Refused at once while tasks are plainly queued or running, without locking or deleting anything; the
        // locked delete below judges again what it removes.
        if let open = try connection.execute(
            """
            SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
                   count(*) FILTER (WHERE status = 'running') AS running
            FROM tasks WHERE job_id = \(job) AND status IN ('queued', 'running')
            """
        ).first, try open.int("queued") + open.int("running") > 0 {
            throw Self.stillRunning(job, queued: try open.int("queued"), running: try open.int("running"))
        }
        return try connection.transaction {
            // The job's row locked first: a concurrent enqueue into it waits (its insert checks the job's key) and
            // then finds it gone. The tasks are deleted and counted by state in one statement, so that a retry
            // that queued some after any check is either seen here or waits and then finds them gone.
            guard
                try connection.execute("SELECT id FROM jobs WHERE id = \(job) FOR UPDATE").first != nil
            else {
                throw PostgresError.refused(reason: "job \(job) no longer exists")
            }
            let results =
                try connection.execute("SELECT count(*) AS n FROM results WHERE job_id = \(job)").first?
                .int("n") ?? 0
            let gone = try connection.execute(
                """
                WITH gone AS (DELETE FROM tasks WHERE job_id = \(job) RETURNING status)
                SELECT count(*) AS tasks, count(*) FILTER (WHERE status = 'queued') AS queued,
                       count(*) FILTER (WHERE status = 'running') AS running
                FROM gone
                """
            ).first
            let queued = try gone?.int("queued") ?? 0, running = try gone?.int("running") ?? 0
            guard queued + running == 0 else {
                // Thrown inside the transaction: it is rolled back and the tasks stay.
                throw Self.stillRunning(job, queued: queued, running: running)
            }
            try connection.execute("DELETE FROM jobs WHERE id = \(job)")
            return Deleted(tasks: try gone?.int("tasks") ?? 0, results: results)
        }
    }

    private static func stillRunning(_ job: Int64, queued: Int, running: Int) -> PostgresError {
        .refused(
            reason: "job \(job) has \(queued) queued and \(running) running tasks: cancel it first (`infmllm cancel`) "
                + "and wait for the running ones to end")
    }
}

/// One task of a job with its result, for export.
public struct ExportRow: Sendable, Codable {
    public var taskID: Int64
    public var image: String
    public var width: Int?
    public var height: Int?
    public var input: String
    public var status: String
    public var error: String?
    public var output: String?
    public var model: String?
    /// `[[x1, y1, x2, y2, x1_norm, y1_norm, x2_norm, y2_norm], ...]` in output order.
    public var boxes: [[Double]]
    /// How sure the model was of the output, in 0...1: the geometric mean of its tokens' probabilities
    /// (`results.output_logprob`); nil without a result, or for one written before it was recorded.
    public var confidence: Double? = nil
    /// The image's Exif orientation tag (1 to 8; 1 when it has none), nil when the image was never read (or was read
    /// before orientations were recorded).
    public var orientation: Int? = nil
    /// The manifest line's other fields, a JSON object as text (not among the coded keys: writers put the object
    /// itself where they need it).
    public var metadata: String? = nil

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", image, width, height, input, status, error, output, model, boxes, orientation
        case confidence
    }
}

/// The order of exported rows.
public enum ExportOrder: Sendable {
    /// By task id: the order tasks were enqueued in.
    case task
    /// By image URI, then task id: an image's tasks together, and an archive's members together.
    case image
}

extension PostgresJobStore {
    /// Every task of `job` with its result and boxes, handed to `body` a batch at a time through a cursor: a job of
    /// millions of tasks is exported in the memory of one batch.
    /// - Parameter statuses: only the tasks in these states (all when empty).
    public func exportRows(
        job: Int64, order: ExportOrder = .task, statuses: [TaskStatus] = [], _ body: ([ExportRow]) throws -> Void
    ) throws {
        let columns: SQL = """
            SELECT t.id, t.image_uri, t.image_width, t.image_height, t.image_orientation, t.input_text, t.status,
                   t.last_error,
                   r.output_text, r.model_name, t.metadata::text AS metadata,
                   output_confidence(r.output_logprob, r.output_token_count) AS confidence,
                   coalesce((SELECT string_agg(concat_ws(',', x1, y1, x2, y2, x1_norm, y1_norm, x2_norm, y2_norm), ';' ORDER BY ordinal)
                             FROM result_boxes b WHERE b.task_id = t.id), '') AS boxes
            FROM tasks t LEFT JOIN results r ON r.task_id = t.id
            """
        var declare: SQL = "DECLARE export_rows NO SCROLL CURSOR FOR "
        declare.append(columns)
        declare.append(" WHERE t.job_id = \(job)")
        if !statuses.isEmpty {
            declare.append(" AND t.status = ANY(\(PostgresArray(statuses.map(\.rawValue)))::text[])")
        }
        switch order {
        case .task: declare.append(" ORDER BY t.id")
        // Byte order: an archive's URIs share the prefix `tar:ARCHIVE!/`, and only there does that put them together.
        case .image: declare.append(" ORDER BY t.image_uri COLLATE \"C\", t.id")
        }
        try stream(declare, cursor: "export_rows") { try body(try $0.map(Self.exportRow)) }
    }

    /// The image, text and fields of each task of `job` whose status is one of `statuses` (any when empty), in task
    /// order, a batch at a time: what `enqueue --from-job` lists.
    public func taskInputs(
        job: Int64, statuses: [TaskStatus] = [],
        _ body: ([(uri: String, text: String, metadata: String?)]) throws -> Void
    ) throws {
        var declare: SQL = """
            DECLARE task_inputs NO SCROLL CURSOR FOR
            SELECT image_uri, input_text, metadata::text AS metadata FROM tasks WHERE job_id = \(job)
            """
        if !statuses.isEmpty {
            declare.append(" AND status = ANY(\(PostgresArray(statuses.map(\.rawValue)))::text[])")
        }
        declare.append(" ORDER BY id")
        try stream(declare, cursor: "task_inputs") { rows in
            try body(
                try rows.map { (try $0.string("image_uri"), try $0.string("input_text"), try $0.text("metadata")) })
        }
    }

    /// Runs `declare` (a `DECLARE cursor ...` statement) in a transaction and hands `body` its rows 2,000 at a time.
    private func stream(_ declare: SQL, cursor: String, _ body: (PostgresRows) throws -> Void) throws {
        try connection.transaction {
            try connection.execute(declare)
            while true {
                let rows = try connection.execute("FETCH FORWARD 2000 FROM \(identifier: cursor)")
                if rows.isEmpty { break }
                try body(rows)
            }
            try connection.execute("CLOSE \(identifier: cursor)")
        }
    }

    private static func exportRow(_ row: PostgresRow) throws -> ExportRow {
        let boxes = try row.string("boxes").split(separator: ";").map {
            $0.split(separator: ",").compactMap { Double($0) }
        }
        var exported = ExportRow(
            taskID: Int64(try row.int("id")), image: try row.string("image_uri"),
            width: try row.text("image_width").flatMap { Int($0) },
            height: try row.text("image_height").flatMap { Int($0) },
            input: try row.string("input_text"), status: try row.string("status"),
            error: try row.text("last_error"),
            output: try row.text("output_text"), model: try row.text("model_name"), boxes: boxes)
        exported.metadata = try row.text("metadata")
        exported.orientation = try row.text("image_orientation").flatMap { Int($0) }
        exported.confidence = try row.text("confidence").flatMap { Double($0) }
        return exported
    }
}

/// Lets `Any`-typed optionals be recognised as nil when rows are turned into JSON.
private protocol OptionalProtocol {
    var isNone: Bool { get }
}

extension Optional: OptionalProtocol {
    var isNone: Bool { self == nil }
}
