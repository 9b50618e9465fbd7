// A worker under a broker whose consumer_timeout is seconds, not the default 30 minutes: it times its batches and
// holds no more messages than it can acknowledge within half the timeout, so the broker never takes tasks back.
// The broker is a node of its own (ops/test-broker.sh); ops/test.sh runs this alone, as its timing must not compete
// with other tests for the cores.

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
    static func broker(_ action: String, _ arguments: [String]) throws {
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/bash"), [RepositoryFiles.path("ops/test-broker.sh"), action] + arguments)
        guard result.status == 0 else { throw ClusterError(message: result.output) }
    }

    @Test func aWorkerHoldsOnlyWhatItFinishesWithinTheConsumerTimeout() throws {
        let port = "5682"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "infmllm-broker-\(UInt64.random(in: 0...UInt64.max).hex)"
        ).path
        // Four seconds: a batch of 8 takes about half a second here, all 96 messages held at once six or more.
        try Self.broker("start", [directory, port, "4000"])
        defer {
            try? Self.broker("stop", [directory, port])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let cluster = try Cluster(preset: "bench", amqpURL: "amqp://guest:guest@127.0.0.1:\(port)/%2f")
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", try cluster.imageDirectory(count: 96), "--job", "slow", "--model",
                "bench", "--max-new-tokens", "48", "--min-new-tokens", "48",
            ]))
        try cluster.startWorker(["--batch-size", "8", "--prefetch", "96", "--consumer-timeout", "4"])
        let counts = try cluster.waitUntilFinished(job: "slow", timeout: 180)
        let logs = cluster.workerLogs()
        #expect(counts == ["done": 96], "\(counts)\n\(logs)")
        #expect(logs.contains("holding at most"), "\(logs)")
        #expect(!logs.contains("delivery acknowledgement"), "the broker never closed the channel:\n\(logs)")
        #expect(
            try cluster.query("SELECT max(attempts) AS m FROM tasks").first!.int("m") == 1,
            "no task was taken back and started again")
        cluster.stopWorkers()
    }
}
