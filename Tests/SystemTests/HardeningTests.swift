// The job system's failure cases on the real services: output PostgreSQL cannot store, a result it refuses, a task
// that crashes every worker that starts it, a publish lost after the commit, a job for another model, a stop in
// the middle of a batch, and sampling that must not depend on batch-mates.

import Foundation
import Jobs
import Postgres
import RabbitMQ
import Tensors
import TestSupport
import Testing

@Suite struct HardeningTests {
    /// Rewrites the cluster's tiny checkpoint so that greedy decoding emits `<0x00>` (id 3) at every step: a large
    /// first embedding feature, a final norm that keeps only that feature, and an LM head that reads it into id 3.
    static func makeModelEmitNUL(_ directory: String) throws {
        let path = directory + "/model.safetensors"
        let tensors = try Safetensors.read(path: path)
        let names = tensors.keys.sorted()
        let headers = names.map { Safetensors.Header(name: $0, shape: tensors[$0]!.shape, dtype: .f32) }
        let patched = path + ".patched"
        try Safetensors.write(headers, to: patched) { index in
            let tensor = tensors[names[index]]!
            var values = tensor.floats()
            let hidden = tensor.shape.last!
            switch tensor.name {
            case "lm_model.model.embed_tokens.weight":
                for row in 0..<tensor.shape[0] { values[row * hidden] = 1000 }
            case "lm_model.model.norm.weight":
                values = [Float](repeating: 0, count: hidden)
                values[0] = 1
            case "lm_model.lm_head.weight":
                values = [Float](repeating: 0, count: values.count)
                values[3 * hidden] = 1
            default: break
            }
            return values
        }
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: patched, toPath: path)
    }

    @Test func outputHoldingNULIsStoredWithItsTokensAndTheWorkerGoesOn() throws {
        let cluster = try Cluster()
        try Self.makeModelEmitNUL(cluster.model)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", Cluster.images, "--job", "nul", "--model", "tiny", "--max-new-tokens",
                "4",
            ]))
        let worker = try cluster.startWorker(["--batch-size", "4"])
        let counts = try cluster.waitUntilFinished(job: "nul")
        let total = try cluster.query("SELECT count(*) AS n FROM tasks").first!.int("n")
        #expect((counts["done"] ?? 0) > 0 && counts["done"]! + (counts["failed"] ?? 0) == total, "\(counts)")
        // Every caption was four NULs: the text is stored without them, the ids keep them.
        let rows = try cluster.query("SELECT output_text, output_token_ids::text AS ids FROM results")
        #expect(rows.count == counts["done"])
        for row in rows {
            #expect(try row.string("output_text") == "")
            #expect(try row.string("ids") == "{3,3,3,3}")
        }
        #expect(worker.isRunning, "\(cluster.workerLogs())")
        cluster.stopWorkers()
    }

    @Test func aResultPostgreSQLRefusesFailsOnlyItsTask() throws {
        let cluster = try Cluster()
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", try cluster.imageDirectory(count: 8), "--job", "refuse", "--model",
                "tiny", "--max-new-tokens", "4",
            ]))
        let victim = try cluster.query("SELECT min(id) + 2 AS id FROM tasks").first!.int("id")
        // A trigger stands in for any permanent refusal (a constraint, a value the column cannot hold).
        try PostgresConnection(url: cluster.databaseURL).executeScript(
            """
            CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.task_id = \(victim) THEN RAISE EXCEPTION 'no room for task %', NEW.task_id; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON results FOR EACH ROW EXECUTE FUNCTION refuse_one();
            """)
        let worker = try cluster.startWorker(["--batch-size", "8", "--log-format", "json"])
        #expect(try cluster.waitUntilFinished(job: "refuse") == ["done": 7, "failed": 1])
        let failure = try cluster.query("SELECT id, last_error FROM tasks WHERE status = 'failed'").first!
        #expect(try failure.int("id") == victim)
        let reason = try failure.string("last_error")
        #expect(reason.contains("could not be stored") && reason.contains("no room for task \(victim)"), "\(reason)")
        #expect(cluster.workerLogs().contains("recording them one at a time"))
        // Every log line is a JSON object with its level and the worker; the line about the task names it and its job.
        let lines = cluster.workerLogs().split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: String]
        }
        #expect(!lines.isEmpty && lines.allSatisfy { $0?["level"] != nil && $0?["worker"] == "w0" }, "\(lines)")
        #expect(lines.contains { $0?["task"] == String(victim) && $0?["job"] == "1" && $0?["level"] == "error" })
        #expect(worker.isRunning)
        cluster.stopWorkers()
    }

    /// A worker started on a database that misses the build's newest migration stops at once, saying what to run,
    /// instead of failing to record every batch; the tasks stay queued for a worker that can record them.
    @Test func aWorkerRefusesADatabaseNotMigratedForItsBuild() throws {
        let cluster = try Cluster()
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", try cluster.imageDirectory(count: 2), "--job", "early", "--model",
                "tiny", "--max-new-tokens", "4",
            ]))
        _ = try cluster.query("DELETE FROM schema_migrations WHERE version = \(PostgresJobStore.schemaVersion)")
        let worker = try cluster.startWorker()
        try cluster.wait(for: "the worker to stop") { !worker.isRunning }
        #expect(worker.terminationStatus != 0)
        #expect(cluster.workerLogs().contains("run `infmllm migrate`"), "\(cluster.workerLogs())")
        #expect(try cluster.counts(job: "early") == ["queued": 2])
    }

    @Test func aTaskThatCrashesWorkersFailsAloneAndItsBatchMatesFinish() throws {
        let cluster = try Cluster(deliveryLimit: 2)
        let images = try cluster.imageDirectory(count: 8)
        let manifest = cluster.scratch.appendingPathComponent("poison.jsonl")
        let lines = try FileManager.default.contentsOfDirectory(atPath: images).sorted().enumerated().map {
            index, name in
            "{\"image\": \"\(images)/\(name)\", \"question\": \"\(index == 5 ? "CRASH" : "What is it?")\"}"
        }
        try Data(lines.joined(separator: "\n").utf8).write(to: manifest)
        try cluster.check(
            try cluster.run([
                "enqueue", "vqa", "--manifest", manifest.path, "--job", "poison", "--model", "tiny",
                "--max-new-tokens", "4",
            ]))
        // A supervisor: whenever no worker is alive, start one, as a process manager would.
        let deadline = Date().addingTimeInterval(180)
        var counts: [String: Int] = [:]
        while Date() < deadline {
            counts = try cluster.counts(job: "poison")
            if (counts["queued"] ?? 0) + (counts["running"] ?? 0) == 0 { break }
            if !cluster.workers.contains(where: \.isRunning) {
                try cluster.startWorker(
                    ["--batch-size", "8"],
                    environment: ["INFMLLM_FAILPOINT_CRASH_ON_INPUT": "CRASH"])
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(counts == ["done": 7, "failed": 1], "\(counts)\n\(cluster.workerLogs())")
        let poisoned = try cluster.query("SELECT attempts, last_error FROM tasks WHERE input_text = 'CRASH'").first!
        #expect(try poisoned.int("attempts") == 3, "started once per delivery: the first and two redeliveries")
        let reason = try poisoned.string("last_error")
        #expect(reason.contains("dead-lettered") && reason.contains("started on it 3 time(s)"), "\(reason)")
        // Each healthy task was started at most twice: in the batch that crashed, then alone.
        let healthy = try cluster.query("SELECT max(attempts) AS m FROM tasks WHERE input_text <> 'CRASH'").first!
        #expect(try healthy.int("m") <= 2)
        #expect(cluster.workers.count >= 3, "the poisonous task crashed a worker on each of its deliveries")
        cluster.stopWorkers()
    }

    @Test func tasksWhosePublishFailedAfterTheCommitArePublishedByTheReconciler() throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 6)
        let unreachable = "amqp://guest:guest@127.0.0.1:1/%2f"
        // The broker cannot be reached: the tasks are committed, the publish fails.
        let lost = try cluster.run([
            "enqueue", "caption", "--dir", images, "--job", "lost", "--model", "tiny", "--amqp-url", unreachable,
        ])
        #expect(lost.status != 0)
        #expect(try cluster.counts(job: "lost") == ["queued": 6])
        // The same command again, with the broker back: nothing new, the six published now.
        let again = try cluster.run(["enqueue", "caption", "--dir", images, "--job", "lost", "--model", "tiny"])
        #expect(
            again.status == 0 && again.output.contains("6 unpublished tasks of earlier runs published"),
            "\(again.output)")
        #expect(try cluster.query("SELECT count(*) AS n FROM tasks WHERE published_at IS NULL").first!.int("n") == 0)

        // Another job loses its publish; an idle worker's reconciler publishes it after the grace period.
        let second = try cluster.run([
            "enqueue", "caption", "--dir", Cluster.images, "--job", "second", "--model", "tiny", "--amqp-url",
            unreachable,
        ])
        #expect(second.status != 0)
        try cluster.startWorker(["--republish-after", "1"])
        #expect(try cluster.waitUntilFinished(job: "lost") == ["done": 6])
        let secondCounts = try cluster.waitUntilFinished(job: "second")
        #expect(secondCounts["queued"] == nil && secondCounts["running"] == nil)
        #expect(cluster.workerLogs().contains("whose messages were never confirmed"), "\(cluster.workerLogs())")
        cluster.stopWorkers()
    }

    @Test func republishedTasksThatWereAlreadyQueuedGetOneResultEach() throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 12)
        try cluster.check(
            try cluster.run(["enqueue", "caption", "--dir", images, "--job", "twice", "--model", "tiny"]))
        // As if every confirm had been lost: the reconciler publishes all twelve a second time.
        _ = try cluster.query("UPDATE tasks SET published_at = NULL")
        try cluster.startWorker(["--republish-after", "0"])
        #expect(try cluster.waitUntilFinished(job: "twice") == ["done": 12])
        // The duplicates are taken and acknowledged too.
        let topology = TaskTopology(prefix: cluster.prefix, model: "tiny")
        try cluster.wait(for: "the duplicates acknowledged") { try cluster.queueMessages(topology.queue) == (0, 0) }
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == 12 && results.int("d") == 12)
        cluster.stopWorkers()
    }

    /// The model's queue is deleted under a running worker (an operator's `rabbitmqctl delete_queue`, an upgrade):
    /// the broker cancels the worker's consumer, and the worker declares its queue again and serves new tasks,
    /// where it used to wait on the deleted queue for good.
    @Test func aWorkerWhoseQueueIsDeletedServesItAgain() throws {
        let cluster = try Cluster()
        let topology = TaskTopology(prefix: cluster.prefix, model: "tiny")
        let lanes = TaskPriority.lanes.map(topology.queue)
        try cluster.startWorker()
        // An idle worker consumes one lane of its model (the high one, with nothing ready anywhere).
        var consumed: String?
        try cluster.wait(for: "the worker to consume") {
            consumed = try lanes.first { try cluster.queueConsumers($0) == 1 }
            return consumed != nil
        }
        let queue = try #require(consumed)
        try cluster.check(
            try ProcessResult.run(URL(fileURLWithPath: "/usr/sbin/rabbitmqctl"), ["-q", "delete_queue", queue]))
        try cluster.wait(for: "the worker to declare its queue again and consume a lane") {
            try cluster.queueConsumers(queue) != nil
                && lanes.map { try cluster.queueConsumers($0) ?? 0 }.reduce(0, +) == 1
        }
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", Cluster.images + "/rgb_64x64.png", "--job", "after", "--model", "tiny",
            ]))
        #expect(try cluster.waitUntilFinished(job: "after") == ["done": 1], "\(cluster.workerLogs())")
        cluster.stopWorkers()
    }

    @Test func aJobForAnotherModelWaitsForThatModelsWorkers() throws {
        let cluster = try Cluster()
        let other = cluster.scratch.appendingPathComponent("other").path
        try cluster.check(try cluster.run(["model", "init", "--preset", "tiny", "--seed", "4", "--out", other]))
        cluster.otherModels.append(other)
        // Nobody serves the other model yet: enqueue says so, naming the key the job is routed by.
        let enqueued = try cluster.run([
            "enqueue", "caption", "--dir", Cluster.images, "--job", "for-other", "--model", other,
        ])
        #expect(enqueued.status == 0)
        #expect(enqueued.output.contains("no worker is consuming the queue of model other"), "\(enqueued.output)")
        let json = try cluster.run(["progress", "for-other", "--json", "--timeout", "1", "--interval", "0.2"])
        #expect(json.output.contains(#""consumers":0"#) && json.output.contains(#""model_key":"other""#))
        try cluster.check(
            try cluster.run(["enqueue", "caption", "--dir", Cluster.images, "--job", "for-tiny", "--model", "tiny"]))
        try cluster.startWorker()
        let tinyCounts = try cluster.waitUntilFinished(job: "for-tiny")
        #expect(tinyCounts["queued"] == nil)
        let waiting = try cluster.counts(job: "for-other")
        #expect(waiting.keys.sorted() == ["queued"], "the tiny worker took none of them: \(waiting)")

        // A message for the other model's job put on tiny's queue by hand is sent on, not run.
        let stray = try cluster.query(
            "SELECT t.id, t.job_id FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = 'for-other' LIMIT 1"
        ).first!
        let topology = TaskTopology(prefix: cluster.prefix, model: "tiny")
        try AMQPConnection(url: AMQPURL(Cluster.amqpURL)).publish([
            OutgoingMessage(
                exchange: topology.exchange, routingKey: topology.routingKey,
                body: Array("{\"v\":1,\"task_id\":\(try stray.int("id")),\"job_id\":\(try stray.int("job_id"))}".utf8))
        ])
        #expect(cluster.waitForLog("is for model other, not tiny"), "\(cluster.workerLogs())")
        #expect(try cluster.counts(job: "for-other").keys.sorted() == ["queued"])

        try cluster.startWorker(model: other)
        let otherCounts = try cluster.waitUntilFinished(job: "for-other")
        let served = try cluster.run([
            "enqueue", "caption", Cluster.images + "/rgb_64x64.png", "--job", "for-other-2", "--model", other, "--json",
        ])
        #expect(served.output.contains(#""consumers":1"#), "\(served.output)")
        #expect(otherCounts["queued"] == nil && otherCounts["running"] == nil)
        let models = try cluster.query(
            "SELECT DISTINCT r.model_name AS m FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.name = 'for-other'"
        ).map { try $0.string("m") }
        #expect(models == ["other"])
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == results.int("d"))
        cluster.stopWorkers()
    }

    @Test func aStopReturnsTheTasksNotStartedAtOnce() throws {
        let cluster = try Cluster(preset: "bench")
        let images = try cluster.imageDirectory(count: 24)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "stop", "--model", "bench", "--max-new-tokens", "24",
                "--min-new-tokens", "24",
            ]))
        // The worker holds the tasks it started before its first model step: the signal lands while they are in
        // flight.
        cluster.hold()
        let worker = try cluster.startWorker(["--batch-size", "4", "--prefetch", "12"])
        try cluster.wait(for: "tasks held in flight") { cluster.workerLogs().contains("holding while") }
        let started = try #require(try cluster.counts(job: "stop")["running"])
        worker.terminate()
        try cluster.wait(for: "the messages not started going back") {
            cluster.workerLogs().contains("went back to the queue")
        }
        #expect(worker.isRunning, "the messages went back while the tasks in hand were still in flight")
        cluster.release()
        worker.waitUntilExit()
        #expect(worker.terminationStatus == 0)
        let afterStop = try cluster.counts(job: "stop")
        #expect(afterStop["running"] == nil && afterStop["done"] == started, "\(afterStop)")
        try cluster.startWorker(["--batch-size", "8"])
        #expect(try cluster.waitUntilFinished(job: "stop") == ["done": 24])
        // Returned tasks had not started: no task was started twice.
        #expect(try cluster.query("SELECT max(attempts) AS m FROM tasks").first!.int("m") == 1)
        cluster.stopWorkers()
    }

    @Test func aSampledAnswerIsTheSameAloneAndInABatch() throws {
        func answers(batchSize: Int) throws -> [Int: String] {
            let cluster = try Cluster()
            try cluster.check(
                try cluster.run([
                    "enqueue", "vqa", "--dir", try cluster.imageDirectory(count: 6), "--question", "What is it?",
                    "--job", "sampled", "--model", "tiny", "--max-new-tokens", "8", "--temperature", "1.0", "--seed",
                    "11",
                ]))
            try cluster.startWorker(["--batch-size", String(batchSize)])
            #expect(try cluster.waitUntilFinished(job: "sampled") == ["done": 6])
            var answers: [Int: String] = [:]
            for row in try cluster.query("SELECT task_id, output_token_ids::text AS ids FROM results") {
                answers[try row.int("task_id")] = try row.string("ids")
            }
            cluster.stopWorkers()
            return answers
        }
        let alone = try answers(batchSize: 1)
        let batched = try answers(batchSize: 6)
        #expect(alone.count == 6 && alone == batched)
        #expect(Set(alone.values).count > 1, "sampling gave the tasks different answers")
    }
}
