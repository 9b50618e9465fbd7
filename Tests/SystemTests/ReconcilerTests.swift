// No task stays running or queued forever, on the real services: a worker that hangs while it holds tasks (stopped,
// its broker connection still open and without heartbeats) loses them when their lease expires, and another worker
// runs them; a queue purged mid-job has its tasks published again once it is empty; two enqueue runs on one job
// publish each task once.

import Foundation
import Jobs
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite struct ReconcilerTests {
    @Test func aHungWorkersTasksAreRunByAnotherOnceTheirLeaseExpires() throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 6)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "hung", "--model", "tiny", "--max-new-tokens", "3",
            ]))
        let total = try cluster.query("SELECT count(*) AS n FROM tasks").first!.int("n")
        // The first worker takes one task and starts on it, then hangs: its connections stay open, it sends no
        // heartbeat (there are none), and it renews no lease.
        cluster.hold()
        let hung = try cluster.startWorker([
            "--heartbeat", "0", "--lease", "2", "--batch-size", "1", "--prefetch", "1",
        ])
        try cluster.waitForFirst("running", job: "hung")
        kill(hung.processIdentifier, SIGSTOP)
        func end() {
            kill(hung.processIdentifier, SIGKILL)
            kill(hung.processIdentifier, SIGCONT)
            hung.waitUntilExit()
            cluster.stopWorkers()
        }
        defer { end() }
        cluster.release()
        // Another worker's reconciler finds the expired leases, queues the tasks again and runs them.
        try cluster.startWorker(["--lease", "2", "--republish-after", "1"])
        let counts = try cluster.waitUntilFinished(job: "hung", timeout: 120)
        #expect(counts == ["done": total], "\(counts)\n\(cluster.workerLogs())")
        #expect(cluster.workerLogs().contains("whose lease expired"), "\(cluster.workerLogs())")
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == total && results.int("d") == total)
    }

    @Test func aQueuePurgedMidJobHasItsTasksPublishedAgain() throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 5)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "purged", "--model", "tiny", "--max-new-tokens", "3",
            ]))
        let total = try cluster.query("SELECT count(*) AS n FROM tasks").first!.int("n")
        let topology = TaskTopology(prefix: cluster.prefix, model: "tiny")
        try cluster.wait(for: "the messages") { try cluster.queueMessages(topology.queue).ready == total }
        let purged = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/sbin/rabbitmqctl"), ["-q", "purge_queue", topology.queue])
        try #require(purged.status == 0, "\(purged.output)")
        try cluster.startWorker(["--requeue-undelivered-after", "1", "--republish-after", "1"])
        let counts = try cluster.waitUntilFinished(job: "purged", timeout: 120)
        #expect(counts == ["done": total], "\(counts)\n\(cluster.workerLogs())")
        #expect(cluster.workerLogs().contains("were lost (none seen for long) go out again"), "\(cluster.workerLogs())")
        cluster.stopWorkers()
    }

    @Test func twoEnqueueRunsOnOneJobPublishEachTaskOnce() throws {
        let cluster = try Cluster()
        let first = try cluster.imageDirectory(count: 300)
        // Two runs at once on one job, over the same and different images.
        let runs = [first, Cluster.images].map { directory in
            let process = Process()
            process.executableURL = try? RepositoryFiles.binary()
            process.arguments = [
                "enqueue", "caption", "--dir", directory, "--job", "twice", "--model", "tiny", "--max-new-tokens", "3",
            ]
            process.environment = ProcessInfo.processInfo.environment.merging(cluster.environment) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        for run in runs { try run.run() }
        for run in runs { run.waitUntilExit() }
        #expect(runs.allSatisfy { $0.terminationStatus == 0 })
        let total = try cluster.query("SELECT count(*) AS n FROM tasks").first!.int("n")
        let unpublished = try cluster.query("SELECT count(*) AS n FROM tasks WHERE published_at IS NULL").first!
        #expect(try unpublished.int("n") == 0)
        // Every task has exactly one message: the queue holds as many task ids as there are tasks.
        let topology = TaskTopology(prefix: cluster.prefix, model: "tiny")
        let connection = try AMQPConnection(url: AMQPURL(cluster.amqpURL))
        var seen: [Int64] = []
        while let message = try connection.get(from: topology.queue) {
            seen += try TaskMessage.decode(message.body).taskIDs
            try connection.ack(message.deliveryTag)
        }
        #expect(seen.count == total && Set(seen).count == total, "\(seen.count) ids for \(total) tasks")
    }
}
