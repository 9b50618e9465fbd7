// A worker under a broker whose consumer_timeout is seconds, not the default 30 minutes: it times its tasks and
// holds no more messages than it can acknowledge within half the timeout, so the broker never takes tasks back.
// Each model step is made to take at least 100 ms (a failpoint), so that the limit applies on any machine. The
// broker is a node of its own (ops/test-broker.sh); ops/test.sh runs this alone. The same scenario on in-memory
// services, with a clock the test moves, is in WorkerScenarioTests.

import Foundation
import Postgres
import TestSupport
import Testing

@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["INFMLLM_RESTART_TESTS"] == "1",
        "times batches against a short broker timeout; run alone with INFMLLM_RESTART_TESTS=1 (ops/test.sh does)"))
struct ConsumerTimeoutTests {
    @Test func aWorkerHoldsOnlyWhatItFinishesWithinTheConsumerTimeout() throws {
        let port = "5682"
        let directory = ScratchFolders.path("infmllm-broker")
        // Ten seconds. A task takes at least 25 steps of 100 ms, 4 at a time: at least 0.6 s each, so half the
        // timeout holds at most 8 of the 24 messages, while the first 4 (held before any is timed) end in seconds.
        try Cluster.testBroker("start", [directory, port, "10000"])
        defer {
            try? Cluster.testBroker("stop", [directory, port])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let cluster = try Cluster(preset: "bench", amqpURL: "amqp://guest:guest@127.0.0.1:\(port)/%2f")
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", try cluster.imageDirectory(count: 24), "--job", "slow", "--model",
                "bench", "--max-new-tokens", "24", "--min-new-tokens", "24",
            ]))
        try cluster.startWorker(
            ["--batch-size", "4", "--prefetch", "24", "--consumer-timeout", "10"],
            environment: ["INFMLLM_FAILPOINT_STEP_DELAY_MS": "100"])
        let counts = try cluster.waitUntilFinished(job: "slow", timeout: 300)
        let logs = cluster.workerLogs()
        #expect(counts == ["done": 24], "\(counts)\n\(logs)")
        #expect(logs.contains("holding at most"), "\(logs)")
        #expect(!logs.contains("delivery acknowledgement"), "the broker never closed the channel:\n\(logs)")
        #expect(
            try cluster.query("SELECT max(attempts) AS m FROM tasks").first!.int("m") == 1,
            "no task was taken back and started again")
        cluster.stopWorkers()
    }
}
