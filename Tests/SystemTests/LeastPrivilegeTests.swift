// The logins docker-compose.yml gives each part of the system, on the real services: the RabbitMQ users and
// permissions of ops/compose/rabbitmq-definitions.json (imported into the local broker) and the PostgreSQL logins
// of ops/services.sh, in the least-privilege group roles. A job runs end to end with a client enqueuing and a worker
// consuming, each as its own login (neither the owner nor guest); the client reaches nothing outside the system's
// names.

import Foundation
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite struct LeastPrivilegeTests {
    @Test func theComposeLoginsRunAJobWithOnlyTheirOwnRights() throws {
        let cluster = try Cluster()
        let definitions = RepositoryFiles.path("ops/compose/rabbitmq-definitions.json")
        let imported = try ProcessResult.shell("rabbitmqctl -q import_definitions '\(definitions)' 2>&1")
        try #require(imported.status == 0, "\(imported.output)")
        defer {
            for user in ["infmllm-admin", "infmllm-worker", "infmllm-client"] {
                _ = try? ProcessResult.shell("rabbitmqctl -q delete_user '\(user)' >/dev/null 2>&1")
            }
        }
        // The hashes in the file are those of the documented passwords.
        for user in ["infmllm-admin", "infmllm-worker", "infmllm-client"] {
            let checked = try ProcessResult.shell("rabbitmqctl -q authenticate_user '\(user)' '\(user)' 2>&1")
            #expect(checked.status == 0, "\(user): \(checked.output)")
        }
        let database = cluster.database
        let client = [
            "INFMLLM_DATABASE_URL": "postgresql://infmllm_client_login:infmllm_client_login@127.0.0.1:5432/\(database)",
            "INFMLLM_AMQP_URL": "amqp://infmllm-client:infmllm-client@127.0.0.1:5672/%2f",
        ]
        let worker = [
            "INFMLLM_DATABASE_URL": "postgresql://infmllm_worker_login:infmllm_worker_login@127.0.0.1:5432/\(database)",
            "INFMLLM_AMQP_URL": "amqp://infmllm-worker:infmllm-worker@127.0.0.1:5672/%2f",
        ]
        let enqueued = try ProcessResult.run(
            try RepositoryFiles.binary(),
            [
                "enqueue", "caption", "--dir", Cluster.images, "--job", "least", "--model", "tiny", "--max-new-tokens",
                "3",
            ],
            environment: cluster.environment.merging(client) { $1 })
        try #require(enqueued.status == 0, "\(enqueued.output)")
        try cluster.startWorker(environment: worker)
        let counts = try cluster.waitUntilFinished(job: "least")
        #expect(counts.keys.sorted() == ["done"] || counts.keys.sorted() == ["done", "failed"], "\(counts)")
        let done = try cluster.query(
            "SELECT count(*) AS n FROM results r JOIN tasks t ON t.id = r.task_id WHERE t.status = 'done'"
        ).first!.int("n")
        #expect(done == counts["done"])

        // The client reaches nothing outside the system's names, and not the default exchange (which would let it
        // put messages straight into any queue). Declaring a queue with dead-lettering takes read rights on it in
        // RabbitMQ, so the queues themselves are not closed to it: what it can never do is record results, which
        // PostgreSQL keeps for workers.
        let connection = try AMQPConnection(url: AMQPURL("amqp://infmllm-client:infmllm-client@127.0.0.1:5672/%2f"))
        #expect { try connection.declareQueue("someone-elses-queue") } throws: { "\($0)".contains("ACCESS_REFUSED") }
        #expect {
            try connection.publish([
                OutgoingMessage(
                    exchange: "", routingKey: TaskTopology(prefix: cluster.prefix, model: "tiny").queue, body: [1])
            ])
        } throws: { "\($0)".contains("ACCESS_REFUSED") }
        let progress = try ProcessResult.run(
            try RepositoryFiles.binary(), ["progress", "least", "--json", "--timeout", "1"],
            environment: cluster.environment.merging(client) { $1 })
        #expect(progress.status == 0, "\(progress.output)")
        // A manifest's other fields, stored by the client and given back by export (a client command too).
        let manifest = cluster.scratch.appendingPathComponent("shop.jsonl")
        try Data(#"{"image": "\#(Cluster.images)/rgb_64x64.png", "sku": "s-42"}"#.utf8).write(to: manifest)
        let shop = try ProcessResult.run(
            try RepositoryFiles.binary(),
            [
                "enqueue", "caption", "--manifest", manifest.path, "--job", "shop", "--model", "tiny",
                "--max-new-tokens", "3",
            ],
            environment: cluster.environment.merging(client) { $1 })
        try #require(shop.status == 0, "\(shop.output)")
        #expect(try cluster.waitUntilFinished(job: "shop") == ["done": 1])
        let exported = try ProcessResult.run(
            try RepositoryFiles.binary(), ["export", "shop", "--format", "jsonl"],
            environment: cluster.environment.merging(client) { $1 })
        let row = try JSONSerialization.jsonObject(with: Data(exported.output.utf8)) as? [String: Any]
        #expect((row?["metadata"] as? [String: Any])?["sku"] as? String == "s-42", "\(exported.output)")
        cluster.stopWorkers()
    }
}
