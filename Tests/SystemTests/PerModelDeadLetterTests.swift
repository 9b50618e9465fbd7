// Dead letters stay with their model: each model has its own dead-letter queue that only its workers read. And a
// task that must be sent on to a queue the broker refuses (declared elsewhere with other arguments) fails with the
// reason instead of stopping the worker that tried.

import Foundation
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite struct PerModelDeadLetterTests {
    @Test func aModelsDeadLettersReachOnlyItsOwnWorkers() throws {
        let cluster = try Cluster()
        let other = cluster.scratch.appendingPathComponent("other").path
        try cluster.check(try cluster.run(["model", "init", "--preset", "tiny", "--seed", "4", "--out", other]))
        let otherTopology = TaskTopology(prefix: cluster.prefix, model: other)
        let tinyTopology = TaskTopology(prefix: cluster.prefix, model: "tiny")
        cluster.otherModels.append(other)
        let image = Cluster.images + "/rgb_64x64.png"
        for (job, model) in [("for-other", other), ("for-tiny", "tiny")] {
            try cluster.check(try cluster.run(["enqueue", "caption", image, "--job", job, "--model", model]))
        }
        // Take both messages off their queues, as if every delivery had failed, and dead-letter them by hand.
        let connection = try AMQPConnection(url: AMQPURL(cluster.amqpURL))
        for topology in [otherTopology, tinyTopology] {
            try cluster.wait(for: "the message of \(topology.routingKey)") {
                try cluster.queueMessages(topology.queue).ready == 1
            }
            let message = try #require(try connection.get(from: topology.queue))
            try connection.publish([
                OutgoingMessage(
                    exchange: topology.deadLetterExchange, routingKey: topology.routingKey, body: message.body)
            ])
            try connection.ack(message.deliveryTag)
        }
        try cluster.wait(for: "both dead letters") {
            try cluster.queueMessages(otherTopology.deadLetterQueue).ready == 1
                && cluster.queueMessages(tinyTopology.deadLetterQueue).ready == 1
        }
        // tiny's worker reads tiny's dead letter (and sends its task round again), never the other model's.
        try cluster.startWorker()
        #expect(try cluster.waitUntilFinished(job: "for-tiny") == ["done": 1])
        // (The broker's counts are refreshed every few seconds.)
        try cluster.wait(for: "tiny's dead letter acknowledged", timeout: 60, every: 0.5) {
            try cluster.queueMessages(tinyTopology.deadLetterQueue) == (0, 0)
        }
        #expect(try cluster.queueMessages(otherTopology.deadLetterQueue) == (1, 0))
        #expect(try cluster.counts(job: "for-other") == ["queued": 1])
        cluster.stopWorkers()
    }

    @Test func aQueueTheBrokerRefusesFailsTheTasksSentToItAndTheWorkerGoesOn() throws {
        let cluster = try Cluster()
        let other = cluster.scratch.appendingPathComponent("other").path
        try cluster.check(try cluster.run(["model", "init", "--preset", "tiny", "--seed", "4", "--out", other]))
        cluster.otherModels.append(other)
        // The other model's queue was declared by a deployment with another delivery limit: declaring it with this
        // worker's arguments is refused (406 PRECONDITION_FAILED).
        let enqueued = try ProcessResult.run(
            try RepositoryFiles.binary(),
            ["enqueue", "caption", Cluster.images + "/rgb_64x64.png", "--job", "elsewhere", "--model", other],
            environment: cluster.environment.merging(["INFMLLM_DELIVERY_LIMIT": "9"]) { $1 })
        try #require(enqueued.status == 0, "\(enqueued.output)")
        let stray = try cluster.query(
            "SELECT t.id, t.job_id FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = 'elsewhere'"
        ).first!
        // Its message, put on tiny's queue by hand: tiny's worker must send it on, and cannot.
        let tiny = TaskTopology(prefix: cluster.prefix, model: "tiny")
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", Cluster.images + "/gray_64x48.png", "--job", "t",
                "--model", "tiny", "--max-new-tokens", "3",
            ]))
        try AMQPConnection(url: AMQPURL(cluster.amqpURL)).publish([
            OutgoingMessage(
                exchange: tiny.exchange, routingKey: tiny.routingKey,
                body: Array("{\"v\":1,\"task_id\":\(try stray.int("id")),\"job_id\":\(try stray.int("job_id"))}".utf8))
        ])
        let worker = try cluster.startWorker()
        #expect(try cluster.waitUntilFinished(job: "elsewhere") == ["failed": 1])
        let reason = try cluster.query("SELECT last_error FROM tasks WHERE id = \(try stray.int("id"))").first!
            .string("last_error")
        #expect(
            reason.contains("could not be sent on to the queue of model other") && reason.contains("406"), "\(reason)")
        #expect(try cluster.waitUntilFinished(job: "t") == ["done": 1])
        #expect(worker.isRunning)
        cluster.stopWorkers()
    }
}
