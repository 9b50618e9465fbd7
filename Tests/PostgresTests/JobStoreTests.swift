// Jobs and tasks on a real database: `enqueue --skip-done`'s lookup (an image and text count as done only by a result
// of a job for the same model and task kind, with the same prompt template and decoding parameters), the jobs
// `enqueue` refuses to add to, and `retry`.

import Foundation
import Jobs
import Postgres
import Synchronization
import Testing

@Suite struct JobStoreTests {
    /// A caption job for the model `tiny`, default prompt and settings.
    static func captionJob(_ name: String, in store: PostgresJobStore) throws -> (id: Int64, created: Bool) {
        try store.openJob(name: name, kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: "{}")
    }

    @Test func onlyAResultWithTheSameModelKindTemplateAndSettingsCountsAsDone() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            // A finished VQA job: two images asked "What is it?" with at most 8 new tokens.
            let settings = #"{"max_new_tokens": 8, "beams": 1}"#
            let job = try store.openJob(
                name: "answered", kind: .vqa, model: "tiny", promptTemplate: nil, generationJSON: settings)
            let answered = [
                NewTask(imageURI: "/a.jpg", inputText: "What is it?"),
                NewTask(imageURI: "/b.jpg", inputText: "What is it?"),
            ]
            let added = try store.addTasks(answered, to: job.id)
            try store.record(
                added.map {
                    TaskOutcome(
                        taskID: $0.taskID, jobID: job.id,
                        ending: .result(
                            text: "a cat", tokens: [264, 6635], logProbability: -0.9, promptTokenCount: 270, boxes: [],
                            prompt: "p",
                            decodingJSON: settings, timingsJSON: "{}"))
                },
                provenance: Provenance(
                    modelName: "tiny", weightsSHA256: String(repeating: "0", count: 64), device: "cpu bf16",
                    worker: "w"))
            // The output's log-probability is kept; the view and export give its confidence, the geometric mean of
            // the two tokens' probabilities.
            let kept = try connection.execute("SELECT output_logprob, confidence FROM answers ORDER BY task_id")
            #expect(try kept.map { try $0.text("output_logprob") } == ["-0.9", "-0.9"])
            #expect(try kept.allSatisfy { abs((Double(try $0.text("confidence") ?? "") ?? 0) - exp(-0.45)) < 1e-12 })
            var exported: [Double?] = []
            try store.exportRows(job: job.id) { rows in exported += rows.map(\.confidence) }
            #expect(exported.count == 2 && exported.allSatisfy { abs(($0 ?? 0) - exp(-0.45)) < 1e-12 })
            // No confidence without a log-probability (a result of an older worker), or without a result at all.
            let unscored = try store.addTasks([NewTask(imageURI: "/u.jpg", inputText: "What is it?")], to: job.id)
            let waiting = try store.addTasks([NewTask(imageURI: "/w.jpg", inputText: "What is it?")], to: job.id)
            try store.record(
                [
                    TaskOutcome(
                        taskID: unscored[0].taskID, jobID: job.id,
                        ending: .result(
                            text: "a dog", tokens: [1, 2], logProbability: nil, promptTokenCount: 3, boxes: [],
                            prompt: "p", decodingJSON: settings, timingsJSON: "{}"))
                ],
                provenance: Provenance(
                    modelName: "tiny", weightsSHA256: String(repeating: "0", count: 64), device: "cpu", worker: "w"))
            let view = try connection.execute(
                "SELECT output_logprob, confidence FROM answers WHERE task_id = \(unscored[0].taskID)")
            #expect(view.count == 1)
            #expect(try view.first?.text("output_logprob") == nil && view.first?.text("confidence") == nil)
            var rows: [Int64: Double?] = [:]
            try store.exportRows(job: job.id) { batch in for row in batch { rows[row.taskID] = row.confidence } }
            #expect(rows[unscored[0].taskID] == .some(nil) && rows[waiting[0].taskID] == .some(nil))
            let asked =
                answered + [
                    NewTask(imageURI: "/c.jpg", inputText: "What is it?"),
                    NewTask(imageURI: "/a.jpg", inputText: "Who is it?"),
                ]
            // The same settings (the same JSON in another key order and spacing): the two answered are done.
            let same = try store.withoutResults(
                asked, kind: .vqa, model: "tiny", promptTemplate: nil,
                generationJSON: #"{ "beams": 1, "max_new_tokens": 8 }"#)
            #expect(same == Array(asked[2...]))
            // A chat job asking the same question, another model, prompt template or decoding settings: none is.
            let others: [(TaskKind, String, String?, String)] = [
                (.chat, "tiny", nil, settings), (.vqa, "other", nil, settings),
                (.vqa, "tiny", "Question: {question} <ImageHere>", settings),
                (.vqa, "tiny", nil, #"{"max_new_tokens": 16, "beams": 1}"#),
            ]
            for (kind, model, template, generation) in others {
                let left = try store.withoutResults(
                    asked, kind: kind, model: model, promptTemplate: template, generationJSON: generation)
                #expect(left == asked, "\(kind) \(model) \(template ?? "default") \(generation)")
            }
        }
    }

    @Test func aJobIsOpenedAgainOnlyWithItsOwnSettingsAndNeverOnceCancelled() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            let settings = #"{"max_new_tokens": 8}"#
            let job = try store.openJob(
                name: "photos", kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: settings)
            #expect(job.created)
            // The same settings (as JSON) open it again.
            let again = try store.openJob(
                name: "photos", kind: .caption, model: "tiny", promptTemplate: nil,
                generationJSON: #"{ "max_new_tokens" : 8 }"#)
            #expect(again.id == job.id && !again.created)
            let refusals: [(TaskKind, String, String?, String, String)] = [
                (.vqa, "tiny", nil, settings, "already exists for caption with model tiny"),
                (.caption, "other", nil, settings, "already exists for caption with model tiny"),
                (.caption, "tiny", "Describe <ImageHere>", settings, "another prompt template"),
                (.caption, "tiny", nil, #"{"max_new_tokens": 9}"#, "other decoding settings"),
            ]
            for (kind, model, template, generation, reason) in refusals {
                let error = #expect(throws: PostgresError.self) {
                    try store.openJob(
                        name: "photos", kind: kind, model: model, promptTemplate: template, generationJSON: generation)
                }
                #expect(error.map { "\($0)" }?.contains(reason) == true, "\(String(describing: error))")
            }
            _ = try store.cancel(job: job.id)
            let cancelled = #expect(throws: PostgresError.self) {
                try store.openJob(
                    name: "photos", kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: settings)
            }
            #expect(cancelled.map { "\($0)" }?.contains("was cancelled") == true)
            // A name of digits would be read as a job id by every command that takes one.
            for name in ["42", "007"] {
                #expect(throws: PostgresError.self) {
                    try store.openJob(
                        name: name, kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: settings)
                }
            }
            #expect(try store.jobs().count == 1)
        }
    }

    @Test func aRetryQueuesFailedTasksAsNewOnesUnlessTheJobWasCancelled() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            let job = try Self.captionJob("photos", in: store)
            _ = try store.addTasks((1...3).map { NewTask(imageURI: "/\($0).jpg") }, to: job.id)
            // Task 1 failed after the model started on it four times; task 2 is done.
            try connection.executeScript(
                """
                UPDATE tasks SET status = 'failed', attempts = 4, last_error = 'lease expired', finished_at = now()
                WHERE id = 1;
                UPDATE tasks SET status = 'done', attempts = 1, finished_at = now() WHERE id = 2;
                """)
            #expect(try store.requeueFailed(job: job.id).map(\.taskID) == [1])
            let rows = try store.tasks([1, 2, 3])
            #expect(rows[1]?.status == .queued && rows[1]?.attempts == 0)
            #expect(rows[2]?.status == .done && rows[3]?.status == .queued)
            let error = try connection.execute("SELECT last_error FROM tasks WHERE id = 1").first!
            #expect(try error.text("last_error") == nil)
            // A cancelled job's tasks are never published: a retry there would strand them as queued.
            try connection.execute("UPDATE tasks SET status = 'failed', finished_at = now() WHERE id = 1")
            _ = try store.cancel(job: job.id)
            #expect(try store.requeueFailed(job: job.id).isEmpty)
            #expect(try store.tasks([1])[1]?.status == .failed)
        }
    }

    /// Export reads through a cursor, a batch at a time: every task once, by task id or by image URI in byte order
    /// (an archive's members together, whatever the database's collation does with `!`, `/` and case).
    @Test func exportHandsOverEveryTaskInBatchesInEitherOrder() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            // A linguistic collation, as a database made with a locale has (this cluster's are C.UTF-8): it sorts
            // `S-1` between `s-0` and `s-2`, and would split an archive's members without the byte order.
            let icu = try connection.execute("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'")
            if !icu.isEmpty {
                try connection.executeScript(
                    """
                    DROP VIEW captions, answers, boxes, failures;
                    ALTER TABLE tasks ALTER COLUMN image_uri TYPE text COLLATE "und-x-icu";
                    """)
            }
            let job = try Self.captionJob("big", in: store)
            let uris =
                (0..<4500).map { "tar:/shards/s-\($0 % 3).tar!/\(String(format: "%05d", 4500 - $0)).jpg" }
                + ["tar:/shards/s-1.tar.d!/x.jpg", "tar:/shards/S-1.tar!/y.jpg", "/loose/a b.jpg"]
            _ = try store.addTasks(uris.map { NewTask(imageURI: $0) }, to: job.id)
            var batches = 0, byTask: [ExportRow] = []
            try store.exportRows(job: job.id) { rows in
                batches += 1
                byTask += rows
            }
            #expect(batches == 3 && byTask.count == uris.count)
            #expect(byTask.map(\.taskID) == byTask.map(\.taskID).sorted() && byTask.map(\.image) == uris)
            var byImage: [String] = []
            try store.exportRows(job: job.id, order: .image) { rows in byImage += rows.map(\.image) }
            #expect(byImage == uris.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        }
    }

    /// A manifest line's other fields are stored with the task (the first line of an image and text wins) and come
    /// back with the row that export reads.
    @Test func metadataIsStoredWithTheTaskAndExported() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            let job = try Self.captionJob("shop", in: store)
            _ = try store.addTasks(
                [
                    NewTask(imageURI: "/a.jpg", metadataJSON: #"{"sku": "s-1", "n": 2}"#),
                    NewTask(imageURI: "/b.jpg"),
                    NewTask(imageURI: "/a.jpg", metadataJSON: #"{"sku": "s-9"}"#),
                ], to: job.id)
            var rows: [ExportRow] = []
            try store.exportRows(job: job.id) { rows += $0 }
            #expect(rows.map(\.metadata) == [#"{"n": 2, "sku": "s-1"}"#, nil])
            // --skip-done finds a done task whatever metadata the new line carries.
            try connection.executeScript(
                """
                UPDATE tasks SET status = 'done', finished_at = now() WHERE id = 1;
                INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                     prompt, decoding, device, worker)
                VALUES (1, \(job.id), 'a cat', 1, 1, 'tiny', 'p', '{}', 'cpu', 'w');
                """)
            let left = try store.withoutResults(
                [NewTask(imageURI: "/a.jpg", metadataJSON: #"{"sku": "s-2"}"#), NewTask(imageURI: "/c.jpg")],
                kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: "{}")
            #expect(left.map(\.imageURI) == ["/c.jpg"])
        }
    }

    /// `progress` starts from the rate tasks ended at over the last ten minutes (nil until two have).
    @Test func theRecentEndRateCountsTasksEndedInTheWindow() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            let job = try Self.captionJob("rate", in: store)
            _ = try store.addTasks((1...6).map { NewTask(imageURI: "/\($0).jpg") }, to: job.id)
            #expect(try store.recentEndRate(job: job.id) == nil)
            try connection.executeScript(
                """
                UPDATE tasks SET status = 'done', finished_at = now() - interval '100 seconds' WHERE id = 1;
                UPDATE tasks SET status = 'failed', finished_at = now() - interval '50 seconds' WHERE id = 2;
                UPDATE tasks SET status = 'done', finished_at = now() WHERE id IN (3, 4);
                UPDATE tasks SET status = 'done', finished_at = now() - interval '2 hours' WHERE id = 5;
                """)
            let rate = try #require(try store.recentEndRate(job: job.id))
            #expect(abs(rate - 4.0 / 100) < 0.002, "\(rate)")
        }
    }

    /// `retry --reason`: only the failures whose reason contains the text go back to the queue.
    @Test func aRetryCanTakeOnlyTheFailuresWithAReason() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            let job = try Self.captionJob("web", in: store)
            _ = try store.addTasks((1...4).map { NewTask(imageURI: "https://example.com/\($0).jpg") }, to: job.id)
            try connection.executeScript(
                """
                UPDATE tasks SET status = 'failed', finished_at = now(), last_error = CASE id
                    WHEN 1 THEN 'https://example.com/1.jpg: operation timed out (after 4 attempts)'
                    WHEN 2 THEN 'https://example.com/2.jpg: not a JPEG or PNG file'
                    WHEN 3 THEN 'https://example.com/3.jpg: 100% timed out_' END
                WHERE id <= 3;
                """)
            // The text is matched as it is: no pattern characters.
            #expect(try store.requeueFailed(job: job.id, reasonContaining: "100% timed out_").map(\.taskID) == [3])
            #expect(try store.requeueFailed(job: job.id, reasonContaining: "%").isEmpty)
            #expect(try store.requeueFailed(job: job.id, reasonContaining: "timed out").map(\.taskID) == [1])
            let rows = try store.tasks([1, 2, 3, 4])
            #expect(rows[1]?.status == .queued && rows[2]?.status == .failed && rows[4]?.status == .queued)
            // A failure with no reason recorded is `unknown`, as `show` lists it.
            try connection.execute("UPDATE tasks SET status = 'failed', finished_at = now() WHERE id = 4")
            #expect(try store.requeueFailed(job: job.id, reasonContaining: "unknown").map(\.taskID) == [4])
            #expect(try store.requeueFailed(job: job.id).map(\.taskID) == [2])
        }
    }

    /// A task that ran twice (a lease expired), its URL's content changing between the reads: the first result
    /// stays, and so does the image it was computed from, which `--skip-done` matches results by.
    @Test func aResultThatLostToAnotherLeavesTheImageTheFirstWasComputedFrom() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            let job = try Self.captionJob("web", in: store)
            let task = try store.addTasks([NewTask(imageURI: "https://example.com/a.jpg")], to: job.id)[0]
            let provenance = Provenance(
                modelName: "tiny", weightsSHA256: String(repeating: "0", count: 64), device: "cpu bf16", worker: "w")
            for (text, sha, width, orientation) in [("a cat", "a", 64, 6), ("a dog", "b", 48, 3)] {
                try store.record(
                    [
                        TaskOutcome(
                            taskID: task.taskID, jobID: job.id,
                            ending: .result(
                                text: text, tokens: [1], logProbability: nil, promptTokenCount: 3, boxes: [],
                                prompt: "p",
                                decodingJSON: "{}", timingsJSON: "{}"),
                            imageSHA256: String(repeating: sha, count: 64), imageWidth: width, imageHeight: width,
                            imageOrientation: orientation)
                    ], provenance: provenance)
            }
            let row = try connection.execute(
                """
                SELECT r.output_text, t.image_sha256, t.image_width, t.image_orientation, t.status
                FROM tasks t JOIN results r ON r.task_id = t.id
                """
            ).first!
            #expect(try row.string("output_text") == "a cat" && row.string("status") == "done")
            #expect(try row.string("image_sha256") == String(repeating: "a", count: 64) && row.int("image_width") == 64)
            #expect(try row.int("image_orientation") == 6, "the image of the result kept, with its Exif orientation")
        }
    }

    /// A retry that queues a job's failed tasks while `delete` runs: the delete waits for it, sees the tasks it
    /// queued, and refuses, leaving the job whole. (A check before the delete alone would have let it remove them.)
    @Test func aDeleteRacingARetryRefusesOnceTheRetryCommits() throws {
        try TestDatabase.withEmpty { url in
            let first = try PostgresConnection(url: url)
            try Migrator(connection: first).migrate(Migration.load(directory: TestDatabase.migrationsDirectory))
            let store = PostgresJobStore(connection: first)
            let job = try Self.captionJob("raced", in: store)
            _ = try store.addTasks([NewTask(imageURI: "/a.jpg"), NewTask(imageURI: "/b.jpg")], to: job.id)
            try first.execute("UPDATE tasks SET status = 'failed', finished_at = now()")
            let second = try PostgresConnection(url: url)
            try second.execute("BEGIN")
            try second.execute("UPDATE tasks SET status = 'queued' WHERE job_id = \(job.id)")  // a retry, open
            let outcome = Mutex<Result<PostgresJobStore.Deleted, any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            let id = job.id
            let deleting = Thread {
                let result = Result {
                    try PostgresJobStore(connection: try PostgresConnection(url: url)).delete(job: id)
                }
                outcome.withLock { $0 = result }
                done.signal()
            }
            deleting.start()
            // Until the delete waits on the retry's row locks.
            while try first.execute(
                """
                SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """
            ).isEmpty {
                Thread.sleep(forTimeInterval: 0.01)
            }
            try second.execute("COMMIT")
            done.wait()
            let result = try #require(outcome.withLock { $0 })
            #expect(throws: PostgresError.self) { try result.get() }
            #expect("\(result)".contains("2 queued and 0 running"), "\(result)")
            #expect(try first.execute("SELECT count(*) AS n FROM tasks WHERE status = 'queued'").first?.int("n") == 2)
            try first.execute("UPDATE tasks SET status = 'done'")
            let deleted = try store.delete(job: job.id)
            #expect(deleted.tasks == 2 && deleted.results == 0)
            #expect(try first.execute("SELECT 1 FROM jobs").isEmpty)
        }
    }

    /// A result reused by content records the reading task's image, with its Exif orientation.
    @Test func aReusedResultRecordsTheImageItWasReadAs() throws {
        try TestDatabase.withMigrated { connection in
            let store = PostgresJobStore(connection: connection)
            let weights = String(repeating: "0", count: 64), sha = String(repeating: "c", count: 64)
            let first = try Self.captionJob("first", in: store)
            let done = try store.addTasks([NewTask(imageURI: "/a.jpg")], to: first.id)[0]
            try store.record(
                [
                    TaskOutcome(
                        taskID: done.taskID, jobID: first.id,
                        ending: .result(
                            text: "a cat", tokens: [1], logProbability: -0.5, promptTokenCount: 3, boxes: [],
                            prompt: "p", decodingJSON: "{}",
                            timingsJSON: "{}"),
                        imageSHA256: sha, imageWidth: 64, imageHeight: 48, imageOrientation: 1)
                ],
                provenance: Provenance(modelName: "tiny", weightsSHA256: weights, device: "cpu", worker: "w"))
            let second = try store.openJob(
                name: "second", kind: .caption, model: "tiny", promptTemplate: nil, generationJSON: "{}",
                reuseResults: true)
            let copy = try store.addTasks([NewTask(imageURI: "/copy-of-a.jpg")], to: second.id)[0]
            let reused = try store.reuseResults(
                for: [ReadImage(taskID: copy.taskID, sha256: sha, width: 64, height: 48, orientation: 6)],
                weightsSHA256: weights)
            #expect(reused == [copy.taskID])
            let row = try connection.execute(
                "SELECT image_orientation, image_width FROM tasks WHERE id = \(copy.taskID)"
            ).first
            #expect(try row?.int("image_orientation") == 6 && row?.int("image_width") == 64)
            // The copy keeps the output's log-probability, and its confidence (one token) is its probability.
            let copied = try connection.execute(
                "SELECT output_logprob, confidence FROM captions WHERE task_id = \(copy.taskID)"
            ).first
            #expect(try copied?.text("output_logprob") == "-0.5")
            #expect(try abs((Double(copied?.text("confidence") ?? "") ?? 0) - exp(-0.5)) < 1e-12)
        }
    }
}
