// No password in use ever appears in what the binaries print: a job run end to end with PostgreSQL logins of its own
// in the client and worker group roles (so with least privilege) and a RabbitMQ user of its own (passwords that
// appear nowhere else), in URL and libpq key=value forms, with failures on the way (a wrong password, an
// unreachable broker, a malformed URL), and every line of output and worker log searched for the passwords.

import Foundation
import Postgres
import TestSupport
import Testing

@Suite struct SecretsInLogsTests {
    @Test func noPasswordReachesAnyOutput() throws {
        let cluster = try Cluster()
        let id = UInt64.random(in: 0...UInt64.max).hex
        // A client and a worker login of their own, each only in its group role (migration 0004): the job runs with
        // the least privileges the system needs.
        let role = "infmllm_secret_c_\(id)", workerRole = "infmllm_secret_w_\(id)"
        let pgPassword = "pgpw\(id)x", workerPassword = "pgpw\(id)w"
        let mqUser = "infmllm-secret-\(id)", mqPassword = "mqpw\(id)y"
        let create = try ProcessResult.shell(
            "su postgres -c \"psql -q -p 5432 -c \\\"CREATE ROLE \(role) LOGIN PASSWORD '\(pgPassword)' IN ROLE infmllm_client; "
                + "CREATE ROLE \(workerRole) LOGIN PASSWORD '\(workerPassword)' IN ROLE infmllm_worker\\\"\"")
        try #require(create.status == 0, "\(create.output)")
        defer {
            _ = try? ProcessResult.shell(
                "su postgres -c \"psql -q -p 5432 -c 'DROP ROLE \(role); DROP ROLE \(workerRole)'\"")
        }
        let user = try ProcessResult.shell(
            "rabbitmqctl -q add_user '\(mqUser)' '\(mqPassword)' >/dev/null 2>&1 && "
                + "rabbitmqctl -q set_permissions -p / '\(mqUser)' '.*' '.*' '.*' >/dev/null 2>&1")
        try #require(user.status == 0, "\(user.output)")
        defer { _ = try? ProcessResult.shell("rabbitmqctl -q delete_user '\(mqUser)' >/dev/null 2>&1") }

        let keyValues = "host=127.0.0.1 port=5432 dbname=\(cluster.database) user=\(role) password='\(pgPassword)'"
        let databaseURL = "postgresql://\(role):\(pgPassword)@127.0.0.1:5432/\(cluster.database)"
        let workerURL = "postgresql://\(workerRole):\(workerPassword)@127.0.0.1:5432/\(cluster.database)"
        let amqpURL = "amqp://\(mqUser):\(mqPassword)@127.0.0.1:5672/%2f"
        var outputs: [String] = []
        func run(_ arguments: [String]) throws -> ProcessResult {
            let result = try cluster.run(arguments)
            outputs.append(result.output)
            return result
        }
        let images = try cluster.imageDirectory(count: 6)
        let enqueued = try run([
            "enqueue", "caption", "--dir", images, "--job", "secret", "--model", "tiny", "--database-url", keyValues,
            "--amqp-url", amqpURL,
        ])
        #expect(enqueued.status == 0, "\(enqueued.output)")
        try cluster.startWorker(environment: ["INFMLLM_DATABASE_URL": workerURL, "INFMLLM_AMQP_URL": amqpURL])
        #expect(try cluster.waitUntilFinished(job: "secret") == ["done": 6])
        _ = try run(["progress", "secret", "--database-url", keyValues, "--timeout", "5"])
        _ = try run(["export", "secret", "--database-url", databaseURL])
        _ = try run(["doctor", "--database-url", databaseURL, "--amqp-url", amqpURL])
        // Failures print the connection they were about.
        let wrongPassword = keyValues.replacingOccurrences(of: pgPassword, with: pgPassword + "-wrong")
        _ = try run(["jobs", "--database-url", wrongPassword])
        _ = try run(["doctor", "--database-url", databaseURL + "-missing", "--amqp-url", amqpURL + "x"])
        let unreachable = try run([
            "enqueue", "caption", "--dir", images, "--job", "secret-2", "--model", "tiny", "--database-url",
            databaseURL,
            "--amqp-url", "amqp://\(mqUser):\(mqPassword)@127.0.0.1:1/%2f",
        ])
        #expect(unreachable.status != 0 && unreachable.output.contains("***"), "\(unreachable.output)")
        _ = try run(["enqueue", "caption", images, "--model", "tiny", "--amqp-url", "amqp://\(mqUser):\(mqPassword)@"])
        cluster.stopWorkers()
        outputs.append(cluster.workerLogs())
        let all = outputs.joined(separator: "\n")
        #expect(!all.isEmpty)
        for password in [pgPassword, workerPassword, mqPassword] {
            let leaks = all.split(separator: "\n").filter { $0.contains(password) }
            #expect(leaks.isEmpty, "\(leaks)")
        }
    }
}
