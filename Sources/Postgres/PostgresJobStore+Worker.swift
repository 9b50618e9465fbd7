// What workers read and write: task rows with their job's settings, claims, and a batch's outcomes committed
// in one transaction (a redelivered task never gets a second result).

import Jobs

/// A task as a worker needs it.
public struct TaskRow: Sendable {
    public var taskID: Int64
    public var jobID: Int64
    public var imageURI: String
    public var inputText: String
    public var status: TaskStatus
    public var taskKind: TaskKind
    public var promptTemplate: String?
    public var generationJSON: String
    public var jobCancelled: Bool
}

/// A box to store with a grounding result.
public struct StoredBox: Sendable {
    public var x1, y1, x2, y2: Double  // normalised
    public var pixelX1, pixelY1, pixelX2, pixelY2: Double

    public init(
        x1: Double, y1: Double, x2: Double, y2: Double, pixelX1: Double, pixelY1: Double, pixelX2: Double,
        pixelY2: Double
    ) {
        (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
        (self.pixelX1, self.pixelY1, self.pixelX2, self.pixelY2) = (pixelX1, pixelY1, pixelX2, pixelY2)
    }
}

/// How one task ended in a batch.
public struct TaskOutcome: Sendable {
    public enum Ending: Sendable {
        case result(
            text: String, tokens: [Int], promptTokenCount: Int, boxes: [StoredBox], prompt: String,
            decodingJSON: String,
            timingsJSON: String)
        case failed(reason: String)
    }

    public var taskID: Int64
    public var jobID: Int64
    public var ending: Ending
    public var imageSHA256: String?
    public var imageWidth: Int?
    public var imageHeight: Int?

    public init(
        taskID: Int64, jobID: Int64, ending: Ending, imageSHA256: String? = nil, imageWidth: Int? = nil,
        imageHeight: Int? = nil
    ) {
        self.taskID = taskID
        self.jobID = jobID
        self.ending = ending
        self.imageSHA256 = imageSHA256
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
    }
}

/// Who produced a result.
public struct Provenance: Sendable {
    public var modelName: String
    public var weightsSHA256: String
    public var device: String
    public var worker: String

    public init(modelName: String, weightsSHA256: String, device: String, worker: String) {
        self.modelName = modelName
        self.weightsSHA256 = weightsSHA256
        self.device = device
        self.worker = worker
    }
}

extension PostgresJobStore {
    /// The rows of `ids` with their jobs' settings; ids with no row (a deleted job) are absent.
    public func tasks(_ ids: [Int64]) throws -> [Int64: TaskRow] {
        guard !ids.isEmpty else { return [:] }
        var rows: [Int64: TaskRow] = [:]
        for row in try connection.execute(
            """
            SELECT t.id, t.job_id, t.image_uri, t.input_text, t.status, j.task_kind, j.prompt_template,
                   j.generation::text AS generation, j.cancelled_at IS NOT NULL AS cancelled
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
                jobCancelled: try row.bool("cancelled"))
        }
        return rows
    }

    /// Marks tasks as taken by `worker`: running, one more attempt. Tasks already done are left alone.
    public func claim(_ ids: [Int64], worker: String) throws {
        guard !ids.isEmpty else { return }
        try connection.execute(
            """
            UPDATE tasks SET status = 'running', attempts = attempts + 1, worker = \(worker), started_at = now()
            WHERE id = ANY(\(PostgresArray(ids))::bigint[]) AND status <> 'done'
            """)
    }

    /// Marks tasks of cancelled jobs as cancelled.
    public func markCancelled(_ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try connection.execute(
            "UPDATE tasks SET status = 'cancelled', finished_at = now() WHERE id = ANY(\(PostgresArray(ids))::bigint[]) AND status <> 'done'"
        )
    }

    /// Commits a batch's outcomes in one transaction: results (once per task), boxes, and task states.
    public func record(_ outcomes: [TaskOutcome], provenance: Provenance) throws {
        guard !outcomes.isEmpty else { return }
        try connection.transaction {
            for outcome in outcomes {
                switch outcome.ending {
                case let .result(text, tokens, promptTokens, boxes, prompt, decoding, timings):
                    let inserted = try connection.execute(
                        """
                        INSERT INTO results (task_id, job_id, output_text, output_token_ids, prompt_token_count,
                            output_token_count, model_name, weights_sha256, prompt, decoding, device, worker, timings_ms)
                        VALUES (\(outcome.taskID), \(outcome.jobID), \(text), \(tokens), \(promptTokens), \(tokens.count),
                            \(provenance.modelName), \(provenance.weightsSHA256), \(prompt), \(decoding)::jsonb,
                            \(provenance.device), \(provenance.worker), \(timings)::jsonb)
                        ON CONFLICT (task_id) DO NOTHING RETURNING task_id
                        """
                    ).count
                    if inserted == 1 {
                        for (ordinal, box) in boxes.enumerated() {
                            try connection.execute(
                                """
                                INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
                                VALUES (\(outcome.taskID), \(ordinal), \(box.x1), \(box.y1), \(box.x2), \(box.y2),
                                        \(box.pixelX1), \(box.pixelY1), \(box.pixelX2), \(box.pixelY2))
                                """)
                        }
                    }
                    try connection.execute(
                        """
                        UPDATE tasks SET status = 'done', last_error = NULL, finished_at = now(),
                            image_sha256 = coalesce(\(outcome.imageSHA256), image_sha256),
                            image_width = coalesce(\(outcome.imageWidth), image_width),
                            image_height = coalesce(\(outcome.imageHeight), image_height)
                        WHERE id = \(outcome.taskID)
                        """)
                case let .failed(reason):
                    try connection.execute(
                        """
                        UPDATE tasks SET status = 'failed', last_error = \(reason), finished_at = now(),
                            image_sha256 = coalesce(\(outcome.imageSHA256), image_sha256)
                        WHERE id = \(outcome.taskID) AND status <> 'done'
                        """)
                }
            }
        }
    }

    /// Failed tasks of `job` back to queued; returns their ids for republishing.
    public func requeueFailed(job: Int64) throws -> [Int64] {
        try connection.execute(
            "UPDATE tasks SET status = 'queued', last_error = NULL WHERE job_id = \(job) AND status = 'failed' RETURNING id"
        ).map { Int64(try $0.int("id")) }
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

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", image, width, height, input, status, error, output, model, boxes
    }
}

extension PostgresJobStore {
    /// Every task of `job` in id order, with its result and boxes when it has them.
    public func exportRows(job: Int64) throws -> [ExportRow] {
        try connection.execute(
            """
            SELECT t.id, t.image_uri, t.image_width, t.image_height, t.input_text, t.status, t.last_error,
                   r.output_text, r.model_name,
                   coalesce((SELECT string_agg(concat_ws(',', x1, y1, x2, y2, x1_norm, y1_norm, x2_norm, y2_norm), ';' ORDER BY ordinal)
                             FROM result_boxes b WHERE b.task_id = t.id), '') AS boxes
            FROM tasks t LEFT JOIN results r ON r.task_id = t.id
            WHERE t.job_id = \(job) ORDER BY t.id
            """
        ).map { row in
            let boxes = try row.string("boxes").split(separator: ";").map {
                $0.split(separator: ",").compactMap { Double($0) }
            }
            return ExportRow(
                taskID: Int64(try row.int("id")), image: try row.string("image_uri"),
                width: try row.text("image_width").flatMap { Int($0) },
                height: try row.text("image_height").flatMap { Int($0) },
                input: try row.string("input_text"), status: try row.string("status"),
                error: try row.text("last_error"),
                output: try row.text("output_text"), model: try row.text("model_name"), boxes: boxes)
        }
    }
}
