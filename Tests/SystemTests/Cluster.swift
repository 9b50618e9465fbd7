// A private deployment for one end-to-end test: its own database and queue names on the real services, a model,
// worker processes of the built binary, and ways to wait on and inspect a job.

import Foundation
import Postgres
import RabbitMQ
import TestSupport

final class Cluster {
    static let serverURL =
        ProcessInfo.processInfo.environment["INFMLLM_DATABASE_URL"]
        ?? "postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm"
    static let amqpURL =
        ProcessInfo.processInfo.environment["INFMLLM_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
    static let images = RepositoryFiles.path("Tests/ImagingTests/Fixtures/images")

    let database: String
    let databaseURL: String
    let prefix: String
    let model: String
    let scratch: URL
    private(set) var workers: [Process] = []

    /// - Parameter preset: `tiny` (milliseconds per batch) or `bench` (slow enough to interrupt mid-job).
    /// - Parameter amqpURL: a broker other than the shared one (see `ops/test-broker.sh`).
    init(preset: String = "tiny", deliveryLimit: Int = 5, amqpURL: String? = nil) throws {
        self.amqpURL = amqpURL ?? Self.amqpURL
        let id = UInt64.random(in: 0...UInt64.max).hex
        database = "infmllm_system_\(id)"
        databaseURL = String(Self.serverURL[...Self.serverURL.lastIndex(of: "/")!]) + database
        prefix = "infmllm-system-\(id)"
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("infmllm-system-\(id)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        // Named after the preset, as jobs name their model: `enqueue --model tiny` routes to this model's queue.
        model = scratch.appendingPathComponent(preset).path
        self.deliveryLimit = deliveryLimit
        try PostgresConnection(url: Self.serverURL).execute("CREATE DATABASE \(identifier: database)")
        try check(run(["migrate"]))
        try check(run(["model", "init", "--preset", preset, "--seed", "3", "--out", model]))
    }

    let deliveryLimit: Int
    let amqpURL: String
    /// Models beside the cluster's that a test sent tasks to: their queues are deleted with the cluster's.
    var otherModels: [String] = []

    var environment: [String: String] {
        [
            "INFMLLM_DATABASE_URL": databaseURL, "INFMLLM_QUEUE_PREFIX": prefix,
            "INFMLLM_DELIVERY_LIMIT": String(deliveryLimit), "INFMLLM_AMQP_URL": amqpURL,
        ]
    }

    func run(_ arguments: [String]) throws -> ProcessResult {
        try ProcessResult.run(try RepositoryFiles.binary(), arguments, environment: environment)
    }

    func check(_ result: ProcessResult) throws {
        guard result.status == 0 else { throw ClusterError(message: result.output) }
    }

    /// `count` distinct image paths (links to the fixture images), for jobs larger than the fixture set.
    func imageDirectory(count: Int) throws -> String {
        let directory = scratch.appendingPathComponent("images-\(count)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.images).filter {
            $0.hasSuffix(".jpg") || $0.hasSuffix(".png")
        }.sorted()
        for index in 0..<count {
            let source = sources[index % sources.count]
            let link = directory.appendingPathComponent(String(format: "%05d-", index) + source)
            try FileManager.default.createSymbolicLink(
                atPath: link.path, withDestinationPath: Self.images + "/" + source)
        }
        return directory.path
    }

    /// Starts a worker process; its output goes to a log file in the scratch directory.
    @discardableResult
    /// - Parameter openFiles: a hard limit on the worker's open descriptors (set through prlimit).
    func startWorker(
        _ extra: [String] = [], model: String? = nil, environment more: [String: String] = [:], openFiles: Int? = nil
    ) throws -> Process {
        let process = Process()
        let arguments = ["worker", "--model", model ?? self.model, "--name", "w\(workers.count)"] + extra
        if let openFiles {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(openFiles):\(openFiles)", try RepositoryFiles.binary().path] + arguments
        } else {
            process.executableURL = try RepositoryFiles.binary()
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }.merging(more) { $1 }
            .merging(["INFMLLM_FAILPOINT_HOLD_FILE": holdFile]) { $1 }
        let log = scratch.appendingPathComponent("worker-\(workers.count).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw ClusterError(message: "cannot create \(log.path)")
        }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        workers.append(process)
        return process
    }

    /// While this file exists, every worker of the cluster waits before each model step: the tasks it started stay
    /// in flight, so that a signal or an outage reliably lands in the middle of them.
    var holdFile: String { scratch.appendingPathComponent("hold").path }

    /// Workers stop before their next model step until `release()`.
    func hold() {
        let created = FileManager.default.createFile(atPath: holdFile, contents: nil)
        precondition(created, "cannot create \(holdFile), which holds the workers")
    }

    func release() {
        try? FileManager.default.removeItem(atPath: holdFile)
    }

    /// Messages of `queue` ready and delivered but not yet acknowledged, as the broker counts them.
    func queueMessages(_ queue: String) throws -> (ready: Int, unacknowledged: Int) {
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/sbin/rabbitmqctl"),
            ["-q", "list_queues", "name", "messages_ready", "messages_unacknowledged", "--no-table-headers"])
        for line in result.output.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count == 3, fields[0] == queue, let ready = Int(fields[1]), let unacked = Int(fields[2]) {
                return (ready, unacked)
            }
        }
        throw ClusterError(message: "no queue \(queue) in rabbitmqctl's list:\n\(result.output)")
    }

    /// Consumers of `queue`, as the broker counts them; nil while there is no such queue.
    func queueConsumers(_ queue: String) throws -> Int? {
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/sbin/rabbitmqctl"),
            ["-q", "list_queues", "name", "consumers", "--no-table-headers"])
        for line in result.output.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count == 2, fields[0] == queue { return Int(fields[1]) }
        }
        return nil
    }

    /// Waits until `condition` holds, looking every `interval` seconds; fails after `timeout` seconds.
    func wait(for what: String, timeout: Double = 60, every interval: Double = 0.05, _ condition: () throws -> Bool)
        throws
    {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: interval)
        }
        throw ClusterError(message: "\(what) did not happen within \(timeout) s\n\(workerLogs())")
    }

    func workerLogs() -> String {
        (0..<workers.count).map {
            (try? String(contentsOf: scratch.appendingPathComponent("worker-\($0).log"), encoding: .utf8)) ?? ""
        }
        .joined(separator: "\n---\n")
    }

    /// A fresh connection each time: tests restart PostgreSQL under a cluster.
    func query(_ sql: SQL) throws -> PostgresRows {
        try PostgresConnection(url: databaseURL).execute(sql)
    }

    func counts(job: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try query(
            "SELECT status, count(*) AS n FROM tasks WHERE job_id = (SELECT id FROM jobs WHERE name = \(job)) GROUP BY status"
        ) {
            counts[try row.string("status")] = try row.int("n")
        }
        return counts
    }

    /// Waits until some task of `job` has `status` (running: a batch is in the model; done: one committed); fails
    /// after `timeout` seconds.
    func waitForFirst(_ status: String, job: String, timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try counts(job: job)[status] ?? 0) > 0 { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw ClusterError(message: "no task of job \(job) was \(status) within \(timeout) s\n\(workerLogs())")
    }

    /// Waits until the workers' logs contain `text`, looking every `interval` seconds; returns whether they did within
    /// `timeout` seconds.
    @discardableResult
    func waitForLog(_ text: String, timeout: Double = 30, every interval: Double = 0.05) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if workerLogs().contains(text) { return true }
            Thread.sleep(forTimeInterval: interval)
        }
        return workerLogs().contains(text)
    }

    /// Waits until no task of `job` is queued or running; fails after `timeout` seconds.
    func waitUntilFinished(job: String, timeout: Double = 120) throws -> [String: Int] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let counts = try? counts(job: job), (counts["queued"] ?? 0) + (counts["running"] ?? 0) == 0,
                !counts.isEmpty
            {
                return counts
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw ClusterError(
            message: "job \(job) did not finish in \(timeout) s: \((try? counts(job: job)) ?? [:])\n\(workerLogs())")
    }

    func stopWorkers() {
        for worker in workers where worker.isRunning {
            worker.terminate()
            worker.waitUntilExit()
        }
    }

    deinit {
        for worker in workers where worker.isRunning {
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()
        }
        if let connection = try? AMQPConnection(url: AMQPURL(amqpURL), timeout: 3) {
            for each in [model] + otherModels {
                try? TaskTopology(prefix: prefix, model: each).delete(on: connection)
            }
            try? TaskTopology(prefix: prefix, model: model).deleteShared(on: connection)
        }
        _ = try? PostgresConnection(url: Self.serverURL).execute(
            "DROP DATABASE IF EXISTS \(identifier: database) WITH (FORCE)")
        try? FileManager.default.removeItem(at: scratch)
    }
}

struct ClusterError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension ProcessResult {
    /// `command` run by /bin/sh.
    static func shell(_ command: String) throws -> ProcessResult {
        try ProcessResult.run(URL(fileURLWithPath: "/bin/sh"), ["-c", command])
    }
}

extension Cluster {
    /// `ops/test-broker.sh ACTION ARGUMENTS...`: a RabbitMQ node of a test's own; fails with the script's output.
    static func testBroker(_ action: String, _ arguments: [String]) throws {
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/bash"), [RepositoryFiles.path("ops/test-broker.sh"), action] + arguments)
        guard result.status == 0 else { throw ClusterError(message: "\(action) \(arguments): \(result.output)") }
    }
}
