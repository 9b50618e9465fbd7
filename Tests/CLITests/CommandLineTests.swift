// The built `infmllm` binary against the real services: migrate a fresh database twice, then check it.

import Foundation
import RabbitMQ
import TestSupport
import Testing

@Suite struct CommandLineTests {
    static let serverURL =
        ProcessInfo.processInfo.environment["INFMLLM_DATABASE_URL"]
        ?? "postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm"

    @Test func migrateAppliesOnceThenReportsCurrentAndDoctorPasses() throws {
        let binary = try RepositoryFiles.binary()
        let database = "infmllm_cli_\(UInt64.random(in: 0...UInt64.max).hex)"
        let admin = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"), [Self.serverURL, "-qc", "CREATE DATABASE \(database)"])
        try #require(admin.status == 0, "\(admin.output)")
        defer {
            _ = try? ProcessResult.run(
                URL(fileURLWithPath: "/usr/bin/psql"),
                [Self.serverURL, "-qc", "DROP DATABASE \(database) WITH (FORCE)"])
        }
        let url = String(Self.serverURL[...Self.serverURL.lastIndex(of: "/")!]) + database
        let prefix = "infmllm-cli-test-\(UInt64.random(in: 0...UInt64.max).hex)"
        defer { Self.deleteTopology(prefix: prefix) }
        let environment = ["INFMLLM_DATABASE_URL": url, "INFMLLM_QUEUE_PREFIX": prefix]

        let before = try ProcessResult.run(binary, ["doctor"], environment: environment)
        #expect(before.status != 0)
        #expect(before.output.contains("pending"))

        let first = try ProcessResult.run(binary, ["migrate"], environment: environment)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("applied 0001_create_core_schema.sql"))

        let second = try ProcessResult.run(binary, ["migrate", "--json"], environment: environment)
        #expect(second.status == 0, "\(second.output)")
        #expect(second.output.contains("\"pending\":[]"))

        let status = try ProcessResult.run(binary, ["migrate", "--status"], environment: environment)
        #expect(status.output.contains("applied  0001_create_core_schema.sql"))

        let doctor = try ProcessResult.run(binary, ["doctor", "--json"], environment: environment)
        #expect(doctor.status == 0, "\(doctor.output)")
        #expect(doctor.output.contains("schema current"))

        // With --cuda, a machine without an NVIDIA driver fails that check, by name, and only that one.
        let gpu = try ProcessResult.run(binary, ["doctor", "--cuda"], environment: environment)
        if FileManager.default.fileExists(atPath: "/dev/nvidiactl") {
            #expect(gpu.status == 0 && gpu.output.contains("ok   cuda: NVIDIA"), "\(gpu.output)")
        } else {
            #expect(gpu.status != 0, "\(gpu.output)")
            #expect(gpu.output.contains("FAIL cuda: no NVIDIA driver on this machine"), "\(gpu.output)")
            #expect(gpu.output.contains("ok   postgres") && gpu.output.contains("ok   rabbitmq"), "\(gpu.output)")
        }
    }

    /// Removes the queues and exchanges declared under `prefix`: each of `models`' queues and the shared ones.
    static func deleteTopology(prefix: String, models: [String] = ["tiny"]) {
        let amqpURL = ProcessInfo.processInfo.environment["INFMLLM_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
        guard let connection = try? AMQPConnection(url: AMQPURL(amqpURL)) else { return }
        for model in models {
            try? TaskTopology(prefix: prefix, model: model).delete(on: connection)
        }
        try? TaskTopology(prefix: prefix, model: "tiny").deleteShared(on: connection)
    }

    @Test func unreachableDatabaseFailsWithAClearMessage() throws {
        let result = try ProcessResult.run(
            try RepositoryFiles.binary(), ["migrate", "--database-url", "postgresql://infmllm:pw@127.0.0.1:1/x"])
        #expect(result.status != 0)
        #expect(result.output.contains("cannot connect to PostgreSQL at postgresql://infmllm:***@127.0.0.1:1/x"))
    }

    @Test func helpWorksWithoutServices() throws {
        let result = try ProcessResult.run(try RepositoryFiles.binary(), ["migrate", "--help"])
        #expect(result.status == 0)
        #expect(result.output.contains("--migrations-dir"))
    }
}

@Suite struct ComposeFileTests {
    @Test func dockerComposeAcceptsTheFile() throws {
        let candidates = ["/usr/bin/docker-compose", "/usr/local/bin/docker-compose"]
        let executable = try #require(
            candidates.first { FileManager.default.isExecutableFile(atPath: $0) },
            "docker-compose is not installed: run ops/install-deps.sh")
        let result = try ProcessResult.run(
            URL(fileURLWithPath: executable), ["-f", RepositoryFiles.path("docker-compose.yml"), "config", "-q"])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func kubernetesManifestsValidate() throws {
        // kubernetes-validate (strict) for the built-in resources, field checks for KEDA's; installs into .build.
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/bash"), [RepositoryFiles.path("tools/k8s_validate.sh")])
        #expect(result.status == 0 && result.output.contains("k8s manifests: valid"), "\(result.output)")
    }

    @Test func theWorkerServiceCanScale() throws {
        let compose = try String(contentsOfFile: RepositoryFiles.path("docker-compose.yml"), encoding: .utf8)
        // `--scale worker=N` fails on a service with a fixed container name or a published host port.
        let worker = try #require(compose.components(separatedBy: "\n  worker:").dropFirst().first)
        let block = worker.components(separatedBy: "\n  ").first ?? worker
        #expect(!block.contains("container_name"))
        #expect(!block.contains("ports:"))
    }
}
