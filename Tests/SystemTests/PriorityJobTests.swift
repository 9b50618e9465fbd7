// Job priorities end to end: a low-priority job enqueued first and a high-priority one after it, then a worker. The
// high job's tasks run before the low job's, but for the few the worker took before the first high message came.

import Foundation
import Jobs
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite struct PriorityJobTests {
    @Test func aHighPriorityJobRunsBeforeALowOneQueuedEarlier() throws {
        let cluster = try Cluster()
        let png = Cluster.images + "/rgb_64x64.png"
        for (folder, count) in [("background", 120), ("urgent", 12)] {
            let directory = cluster.scratch.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for index in 0..<count {
                try FileManager.default.copyItem(
                    atPath: png, toPath: directory.appendingPathComponent(String(format: "%04d.png", index)).path)
            }
        }
        for (job, priority) in [("background", "low"), ("urgent", "high")] {
            try cluster.check(
                try cluster.run([
                    "enqueue", "caption", "--dir", cluster.scratch.appendingPathComponent(job).path, "--job", job,
                    "--model", "tiny", "--max-new-tokens", "1", "--priority", priority,
                ]))
        }
        let jobs = try cluster.run(["jobs"])
        #expect(jobs.output.contains("\turgent\t") && jobs.output.contains("\thigh\n"), "\(jobs.output)")
        let show = try cluster.run(["show", "background"])
        #expect(show.output.contains("low priority"), "\(show.output)")

        // A batch of 2 and messages held 4 at a time: what comes before the first high message is bounded by that.
        try cluster.startWorker(["--batch-size", "2", "--prefetch", "4"])
        _ = try cluster.waitUntilFinished(job: "urgent", timeout: 120)
        _ = try cluster.waitUntilFinished(job: "background", timeout: 300)
        let before = try cluster.query(
            """
            SELECT count(*) AS n FROM tasks t JOIN jobs j ON j.id = t.job_id
            WHERE j.name = 'background' AND t.status = 'done'
              AND t.finished_at < (SELECT max(u.finished_at) FROM tasks u JOIN jobs k ON k.id = u.job_id
                                   WHERE k.name = 'urgent')
            """
        ).first!
        let early = try before.int("n")
        #expect(early <= 8, "background tasks done before the urgent job ended: \(early)")
        let done = try cluster.query("SELECT count(*) AS n FROM tasks WHERE status = 'done'").first!
        #expect(try done.int("n") == 132)
        cluster.stopWorkers()
    }

    /// `priority JOB high` moves a queued job: its tasks are published again in the high lane, and their earlier
    /// messages in the normal lane are settled without a second result when they come.
    @Test func aQueuedJobMovedToTheHighLaneRunsOnceEach() throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 6)
        try cluster.check(try cluster.run(["enqueue", "caption", "--dir", images, "--job", "bump", "--model", "tiny"]))
        let topology = TaskTopology(prefix: cluster.prefix, model: "tiny")
        try cluster.wait(for: "the normal lane's messages") { try cluster.queueMessages(topology.queue).ready == 6 }
        let moved = try cluster.run(["priority", "bump", "high"])
        #expect(
            moved.status == 0 && moved.output.contains("high priority; 6 queued task(s) published again"),
            "\(moved.output)")
        try cluster.wait(for: "the high lane's messages") {
            try cluster.queueMessages(topology.queue(.high)).ready == 6
        }
        #expect(try cluster.run(["show", "bump"]).output.contains("high priority"))
        try cluster.startWorker()
        #expect(try cluster.waitUntilFinished(job: "bump") == ["done": 6])
        try cluster.wait(for: "the earlier messages settled") {
            try cluster.queueMessages(topology.queue) == (0, 0)
                && cluster.queueMessages(topology.queue(.high)) == (0, 0)
        }
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == 6 && results.int("d") == 6)
        cluster.stopWorkers()
    }
}
