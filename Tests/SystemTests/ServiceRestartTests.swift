// Restarting RabbitMQ, and separately PostgreSQL, in the middle of a job: workers reconnect and the job
// completes with one result per task. These restart the shared services, so ops/test.sh runs them on their own
// after every other test (INFMLLM_RESTART_TESTS=1).

import Foundation
import Postgres
import TestSupport
import Testing

@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["INFMLLM_RESTART_TESTS"] == "1",
        "restarts the shared PostgreSQL and RabbitMQ; run alone with INFMLLM_RESTART_TESTS=1 (ops/test.sh does)"))
struct ServiceRestartTests {
    static func restart(_ service: String) throws {
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/bash"), [RepositoryFiles.path("ops/services.sh"), "restart", service])
        guard result.status == 0 else { throw ClusterError(message: result.output) }
    }

    static func survives(_ service: String) throws {
        let cluster = try Cluster(preset: "bench", deliveryLimit: 20)
        let images = try cluster.imageDirectory(count: 60)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "restart", "--model", "bench", "--max-new-tokens", "10",
                "--min-new-tokens", "10",
            ]))
        // The restart lands while the worker holds tasks it started, however fast the machine.
        cluster.hold()
        try cluster.startWorker(["--batch-size", "4"])
        try cluster.wait(for: "tasks held in flight") { cluster.workerLogs().contains("holding while") }
        try restart(service)
        cluster.release()
        let counts = try cluster.waitUntilFinished(job: "restart", timeout: 180)
        #expect(counts == ["done": 60], "\(counts)\n\(cluster.workerLogs())")
        #expect(
            try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!.int("d") == 60)
        #expect(cluster.workerLogs().contains("retrying"), "the worker saw the outage")
        cluster.stopWorkers()
    }

    @Test func workersReconnectAfterRabbitMQRestarts() throws {
        try Self.survives("rabbitmq")
    }

    @Test func workersReconnectAfterPostgreSQLRestarts() throws {
        try Self.survives("postgres")
    }
}
