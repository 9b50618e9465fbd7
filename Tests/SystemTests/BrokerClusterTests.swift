// A node of a three-node RabbitMQ cluster fails mid-job: the worker, given every node's URL, reconnects to another,
// the quorum queue keeps its messages on the two that remain, and every task still ends done once. The nodes are
// brokers of their own on this machine (ops/test-broker.sh: separate node names, ports and data); ops/test.sh runs
// this alone.

import Foundation
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["INFMLLM_RESTART_TESTS"] == "1",
        "starts and stops brokers of its own; run alone with INFMLLM_RESTART_TESTS=1 (ops/test.sh does)"))
struct BrokerClusterTests {
    @Test func aNodeStoppedMidJobLeavesEveryTaskDoneOnce() throws {
        let ports = ["5691", "5692", "5693"]
        let root = ScratchFolders.path("infmllm-brokers")
        let directories = ports.map { root + "/" + $0 }
        defer {
            for (directory, port) in zip(directories, ports) { try? Cluster.testBroker("stop", [directory, port]) }
        }
        for (directory, port) in zip(directories, ports) {
            try Cluster.testBroker("start", [directory, port, "1800000"])
        }
        for (directory, port) in zip(directories, ports).dropFirst() {
            try Cluster.testBroker("join", [directory, port, ports[0]])
        }
        let urls = ports.map { "amqp://guest:guest@127.0.0.1:\($0)/%2f" }.joined(separator: ",")
        let cluster = try Cluster(amqpURL: urls)
        let images = try cluster.imageDirectory(count: 16)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "failover", "--model", "tiny", "--max-new-tokens", "3",
            ]))
        let total = try cluster.query("SELECT count(*) AS n FROM tasks").first!.int("n")
        // The worker connects to the first node; with tasks in flight, that node stops.
        cluster.hold()
        let worker = try cluster.startWorker(["--batch-size", "2", "--prefetch", "4"])
        try cluster.waitForFirst("running", job: "failover")
        try Cluster.testBroker("stop", [directories[0], ports[0]])
        cluster.release()
        let counts = try cluster.waitUntilFinished(job: "failover", timeout: 180)
        #expect(counts == ["done": total], "\(counts)\n\(cluster.workerLogs())")
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == total && results.int("d") == total)
        #expect(worker.isRunning)
        // It lost the stopped node and carried on with another.
        #expect(cluster.workerLogs().contains("retrying"), "\(cluster.workerLogs())")
        cluster.stopWorkers()
    }
}
