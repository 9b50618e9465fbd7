// Connections that die without closing: a worker whose broker connection goes silent (a proxy in between stops
// passing bytes, neither side sees a reset) notices by the missed heartbeats, reconnects and finishes the job with
// every task done once. Each connection says whose it is: the broker lists the worker's consumer and publisher by
// name, and PostgreSQL its sessions.

import Foundation
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite struct HalfOpenConnectionTests {
    /// The cluster's broker URL with its port replaced.
    static func url(_ base: String, port: Int) throws -> String {
        let parsed = try AMQPURL(base)
        return base.replacingOccurrences(of: ":\(parsed.port)/", with: ":\(port)/")
    }

    @Test func aBrokerConnectionCutWithoutACloseIsNoticedAndTheJobFinishes() throws {
        let cluster = try Cluster()
        let proxy = try TCPProxy(target: try AMQPURL(cluster.amqpURL).port)
        let images = try cluster.imageDirectory(count: 12)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "cut", "--model", "tiny", "--max-new-tokens", "3",
            ]))
        let total = try cluster.query("SELECT count(*) AS n FROM tasks").first!.int("n")
        cluster.hold()
        let worker = try cluster.startWorker(
            ["--heartbeat", "2", "--batch-size", "2", "--prefetch", "4"],
            environment: ["INFMLLM_AMQP_URL": try Self.url(cluster.amqpURL, port: proxy.port)])
        try cluster.waitForFirst("running", job: "cut")
        // The path to the broker dies: bytes go nowhere, and no side sees a close or a reset.
        proxy.blackhole()
        cluster.release()
        let counts = try cluster.waitUntilFinished(job: "cut", timeout: 180)
        #expect(counts == ["done": total], "\(counts)\n\(cluster.workerLogs())")
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == total && results.int("d") == total)
        #expect(cluster.workerLogs().contains("heartbeat"), "\(cluster.workerLogs())")
        #expect(worker.isRunning)
        cluster.stopWorkers()
    }

    /// Heartbeats must not cost a busy worker its messages: with a 1 s heartbeat and model steps of 3 s, the
    /// broker would close a connection nobody read for two intervals and hand every message back. The worker's
    /// keep-alive reads it meanwhile, so the job ends with each task started once and no reconnection.
    @Test func stepsLongerThanTwoHeartbeatsKeepTheConnection() throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 3)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "slow", "--model", "tiny", "--max-new-tokens", "2",
            ]))
        try cluster.startWorker(
            ["--heartbeat", "1", "--batch-size", "4"], environment: ["INFMLLM_FAILPOINT_STEP_DELAY_MS": "3000"])
        let counts = try cluster.waitUntilFinished(job: "slow", timeout: 180)
        #expect(counts == ["done": 3], "\(counts)")
        let attempts = try cluster.query("SELECT max(attempts) AS a FROM tasks").first!.int("a")
        #expect(attempts == 1, "\(cluster.workerLogs())")
        #expect(!cluster.workerLogs().contains("retrying"), "\(cluster.workerLogs())")
        cluster.stopWorkers()
    }

    @Test func connectionsAreNamedAfterTheWorkerAndItsRole() throws {
        let cluster = try Cluster()
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", Cluster.images + "/rgb_64x64.png", "--job", "named", "--model", "tiny",
                "--max-new-tokens", "3",
            ]))
        try cluster.startWorker(["--name", "named-w", "--heartbeat", "7"])
        _ = try cluster.waitUntilFinished(job: "named")
        // The broker lists the worker's consumer by name, with the heartbeat it asked for.
        var listed = ""
        try cluster.wait(for: "the consumer's connection", timeout: 60, every: 0.5) {
            listed = try ProcessResult.run(
                URL(fileURLWithPath: "/usr/sbin/rabbitmqctl"),
                ["-q", "list_connections", "client_properties", "timeout", "--no-table-headers"]
            ).output
            return listed.split(separator: "\n").contains {
                $0.contains("infmllm worker named-w consumer") && $0.hasSuffix("7")
            }
        }
        #expect(listed.contains("infmllm worker named-w publisher"), "\(listed)")
        // PostgreSQL shows the worker's sessions by name.
        let sessions = try cluster.query(
            "SELECT application_name AS a FROM pg_stat_activity WHERE datname = current_database()"
        ).map { try $0.string("a") }
        #expect(sessions.contains("infmllm worker named-w"), "\(sessions)")
        cluster.stopWorkers()
    }
}
