// A job over TLS to both services: amqps:// to a RabbitMQ node that only speaks TLS (ops/test-broker.sh start-tls)
// and sslmode=verify-full to PostgreSQL (ops/services.sh makes its certificate); a wrong CA is refused by both with
// a clear error.

import Foundation
import Postgres
import TestSupport
import Testing

@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["INFMLLM_RESTART_TESTS"] == "1",
        "starts a RabbitMQ node of its own; run alone with INFMLLM_RESTART_TESTS=1 (ops/test.sh does)"))
struct TLSTests {
    static let postgresCA = "/etc/postgresql/15/main/infmllm-tls/ca.pem"

    @Test func aJobRunsOverTLSAndAWrongCAIsRefused() throws {
        let port = try NginxServer.freePort()
        let directory = ScratchFolders.path("infmllm-tls-broker")
        let script = RepositoryFiles.path("ops/test-broker.sh")
        let started = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/bash"), [script, "start-tls", directory, String(port)])
        try #require(started.status == 0, "\(started.output)")
        defer {
            _ = try? ProcessResult.run(URL(fileURLWithPath: "/bin/bash"), [script, "stop", directory, String(port)])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let amqps = "amqps://guest:guest@localhost:\(port)/%2f?cacertfile=\(directory)/tls/ca.pem"
        let cluster = try Cluster(amqpURL: amqps)
        let postgres =
            "postgresql://infmllm:infmllm@localhost:5432/\(cluster.database)?sslmode=verify-full&sslrootcert=\(Self.postgresCA)"
        let enqueued = try cluster.run([
            "enqueue", "caption", "--dir", try cluster.imageDirectory(count: 6), "--job", "tls", "--model", "tiny",
            "--database-url", postgres,
        ])
        #expect(enqueued.status == 0, "\(enqueued.output)")
        try cluster.startWorker(environment: ["INFMLLM_DATABASE_URL": postgres])
        #expect(try cluster.waitUntilFinished(job: "tls") == ["done": 6])
        cluster.stopWorkers()
        // The server side saw TLS connections.
        let ssl = try PostgresConnection(url: postgres).execute(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        #expect(try ssl.first?.bool("ssl") == true)

        let wrongBroker = try cluster.run([
            "doctor", "--amqp-url",
            "amqps://guest:guest@localhost:\(port)/%2f?cacertfile=\(directory)/tls/other-ca.pem",
        ])
        #expect(wrongBroker.output.contains("SSL peer cert verification failed"), "\(wrongBroker.output)")
        let wrongDatabase = try cluster.run([
            "doctor", "--database-url",
            "postgresql://infmllm:infmllm@localhost:5432/\(cluster.database)?sslmode=verify-full&sslrootcert=\(directory)/tls/other-ca.pem",
        ])
        #expect(wrongDatabase.output.contains("certificate verify failed"), "\(wrongDatabase.output)")
    }
}
