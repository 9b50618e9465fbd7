// A real Prometheus (Debian's package) scrapes a worker during a job; the counters read back through Prometheus'
// HTTP API match the job's rows, and promtool accepts the exposition.

import Foundation
import Postgres
import TestSupport
import Testing

/// A Prometheus server scraping `target` every second, stopped when this object goes away.
final class PrometheusServer {
    let port: Int
    private let directory: URL
    private var process: ServerProcess!

    init(target: String) throws {
        directory = ScratchFolders.url("infmllm-prometheus")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try NginxServer.freePort()
        let config = """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: infmllm
                static_configs:
                  - targets: ['\(target)']
            """
        try config.write(to: directory.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        let arguments = [
            "/usr/bin/prometheus", "--config.file=\(directory.path)/prometheus.yml",
            "--storage.tsdb.path=\(directory.path)/data", "--web.listen-address=127.0.0.1:\(port)",
        ]
        process = try ServerProcess(arguments, log: directory.path + "/prometheus.log")
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)  // `process` is killed as it goes
    }

    /// The value of an instant query's first sample, or nil when it has none (yet).
    func query(_ expression: String) throws -> Double? {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "http://127.0.0.1:\(port)/api/v1/query?query=\(encoded)"])
        guard let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
            let data = object["data"] as? [String: Any], let samples = data["result"] as? [[String: Any]],
            let value = samples.first?["value"] as? [Any], let text = value.last as? String
        else { return nil }
        return Double(text)
    }
}

@Suite struct MetricsTests {
    @Test func prometheusScrapesAWorkerAndItsCountersMatchTheJob() throws {
        let cluster = try Cluster()
        let directory = cluster.scratch.appendingPathComponent("mixed")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for index in 0..<10 {
            try FileManager.default.copyItem(
                atPath: Cluster.images + "/rgb_64x64.png",
                toPath: directory.appendingPathComponent("\(index).png").path)
        }
        try Data("not an image".utf8).write(to: directory.appendingPathComponent("bad.png"))
        let metricsPort = try NginxServer.freePort()
        let prometheus = try PrometheusServer(target: "127.0.0.1:\(metricsPort)")
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", directory.path, "--job", "watched", "--model", "tiny",
                "--max-new-tokens", "5", "--min-new-tokens", "5",
            ]))
        try cluster.startWorker(["--metrics-address", "127.0.0.1:\(metricsPort)", "--batch-size", "4"])
        #expect(try cluster.waitUntilFinished(job: "watched") == ["done": 10, "failed": 1])

        // Prometheus has scraped the final counters within a few intervals.
        var done: Double?, failed: Double?, tokens: Double?
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            done = try prometheus.query(#"sum(infmllm_tasks_total{outcome="done"})"#)
            failed = try prometheus.query(#"sum(infmllm_tasks_total{outcome="failed",reason="image"})"#)
            tokens = try prometheus.query("sum(infmllm_generated_tokens_total)")
            if done == 10 && failed == 1 && tokens == 50 { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(done == 10 && failed == 1, "\(String(describing: done)) done, \(String(describing: failed)) failed")
        let stored = try cluster.query("SELECT sum(output_token_count) AS n FROM results").first!.int("n")
        #expect(tokens == Double(stored), "tokens \(String(describing: tokens)) against \(stored) stored")
        #expect(try prometheus.query(#"infmllm_phase_seconds_count{phase="vision"}"#) == 10)
        #expect(try prometheus.query("up") == 1)
        // The queue depth is read every few seconds on its own, so the drained queue shows within seconds.
        var depth: Double?
        let drained = Date().addingTimeInterval(20)
        while Date() < drained {
            depth = try prometheus.query("infmllm_queue_depth")
            if depth == 0 { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(depth == 0, "queue depth \(String(describing: depth)) after the job")

        // promtool accepts the exposition, and the health endpoints answer.
        let exposition = cluster.scratch.appendingPathComponent("metrics.txt").path
        let fetched = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c",
                "curl -sf http://127.0.0.1:\(metricsPort)/metrics > '\(exposition)' && promtool check metrics < '\(exposition)'",
            ])
        #expect(fetched.status == 0, "\(fetched.output)")
        let ready = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/curl"), ["-sf", "http://127.0.0.1:\(metricsPort)/readyz"])
        #expect(ready.status == 0 && ready.output.contains("ready"))
        cluster.stopWorkers()
    }

    @Test func theComposePrometheusConfigIsValid() throws {
        let checked = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/promtool"), ["check", "config", RepositoryFiles.path("ops/prometheus.yml")])
        #expect(checked.status == 0, "\(checked.output)")
    }
}

/// The metrics port against clients that misbehave, on a worker running a job: nothing they do takes the worker's
/// descriptors or memory, and /metrics answers again once they are gone.
@Suite struct MetricsPortAbuseTests {
    static func answers(_ port: Int, _ path: String) -> String {
        (try? TCPClient(port: port).get(path)) ?? ""
    }

    @Test func anEndlessHeaderAnd1500IdleConnectionsLeaveTheWorkerWorking() throws {
        let cluster = try Cluster()
        let port = try NginxServer.freePort()
        // 1,024 descriptors in all: without a cap on connections, 1,500 idle ones would take every descriptor the
        // worker has, and its image files would fail to open.
        let worker = try cluster.startWorker(["--metrics-address", "127.0.0.1:\(port)"], openFiles: 1024)
        try cluster.wait(for: "the metrics port", timeout: 120) { Self.answers(port, "/healthz").contains("200 OK") }

        let endless = try TCPClient(port: port)
        endless.send(Array("GET /metrics HTTP/1.1\r\nX-Filler: ".utf8) + [UInt8](repeating: 97, count: 1 << 20))
        #expect(endless.readToEnd().hasPrefix("HTTP/1.1 431"))

        #expect(TCPClient.allowOpenFiles(4096) >= 1600, "this test needs 1,600 descriptors of its own")
        let idle = try (0..<1500).map { _ in try TCPClient(port: port, waiting: false) }
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", Cluster.images, "--job", "besieged", "--model", "tiny",
                "--max-new-tokens", "3",
            ]))
        let counts = try cluster.waitUntilFinished(job: "besieged")
        let expected = try cluster.query("SELECT count(*) AS n FROM tasks").first!.int("n")
        #expect(counts == ["done": expected], "\(counts)\n\(cluster.workerLogs())")
        #expect(worker.isRunning)
        for client in idle { client.close() }
        try cluster.wait(for: "/metrics after the idle connections closed", timeout: 120, every: 0.5) {
            Self.answers(port, "/metrics").contains("infmllm_tasks_total")
        }
        cluster.stopWorkers()
    }
}
