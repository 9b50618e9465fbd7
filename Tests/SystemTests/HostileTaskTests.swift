// Tasks from a client that is less trusted than the worker, on the real services: decoding settings written into
// the database by hand, paths to a FIFO, to /proc and out of the image roots through a link, a URL to the worker's
// own loopback, and images whose padded square would not fit in memory. Each fails its own task with the reason (or
// runs within bounded memory); the worker process survives every one, and a good task after them completes.

import Foundation
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite struct HostileTaskTests {
    @Test func decodingSettingsWrittenByHandFailTheirTasksWithTheReason() throws {
        let cluster = try Cluster()
        let image = Cluster.images + "/rgb_64x64.png"
        let settings = [
            "huge": #"{"max_new_tokens": 1e14}"#, "negative": #"{"max_new_tokens": -7}"#,
            "beams": #"{"num_beams": 1000000}"#, "temperature": #"{"temperature": -1, "top_p": 0.5}"#,
            "top-p": #"{"top_p": 7}"#, "seed": #"{"seed": -3}"#, "text": #"{"max_new_tokens": "many"}"#,
        ]
        for job in settings.keys.sorted() {
            try cluster.check(try cluster.run(["enqueue", "caption", image, "--job", job, "--model", "tiny"]))
            _ = try cluster.query("UPDATE jobs SET generation = \(settings[job]!)::jsonb WHERE name = \(job)")
        }
        let worker = try cluster.startWorker()
        for job in settings.keys.sorted() {
            #expect(try cluster.waitUntilFinished(job: job) == ["failed": 1], "\(job)")
            let reason = try cluster.query(
                "SELECT t.last_error FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = \(job)"
            ).first!.string("last_error")
            #expect(reason.contains("decoding"), "\(job): \(reason)")
        }
        let failed = try cluster.query(
            "SELECT j.name, t.last_error FROM tasks t JOIN jobs j ON j.id = t.job_id ORDER BY j.name"
        ).map { (try $0.string("name"), try $0.string("last_error")) }
        let reasons = Dictionary(uniqueKeysWithValues: failed)
        #expect(reasons["huge"]?.contains("max_new_tokens must be between 1 and 1048576") == true)
        #expect(reasons["negative"]?.contains("max_new_tokens must be between 1 and") == true)
        #expect(reasons["beams"]?.contains("num_beams must be between 1 and 64") == true)
        #expect(reasons["temperature"]?.contains("temperature must be positive") == true)
        #expect(reasons["top-p"]?.contains("top_p must be in (0, 1]") == true)
        #expect(reasons["seed"]?.contains("cannot be read") == true)
        #expect(reasons["text"]?.contains("cannot be read") == true)
        // Every task failed before the model started on it, on its first delivery: nothing crashed and restarted.
        let attempts = try cluster.query("SELECT max(attempts) AS a FROM tasks").first!.int("a")
        #expect(attempts == 0)
        try cluster.check(
            try cluster.run(["enqueue", "caption", image, "--job", "good", "--model", "tiny", "--max-new-tokens", "3"]))
        #expect(try cluster.waitUntilFinished(job: "good") == ["done": 1])
        #expect(worker.isRunning)
        cluster.stopWorkers()
    }

    @Test func filesOutsideTheRootsFIFOsKernelFilesAndLoopbackURLsFailWithoutReadingThem() throws {
        let cluster = try Cluster()
        let roots = cluster.scratch.appendingPathComponent("roots"), outside = cluster.scratch
        try FileManager.default.createDirectory(at: roots, withIntermediateDirectories: true)
        let good = roots.appendingPathComponent("good.png").path
        try FileManager.default.copyItem(atPath: Cluster.images + "/rgb_64x64.png", toPath: good)
        let secret = outside.appendingPathComponent("secret.png").path
        try Data("root:x:0:0:root:/root:/bin/bash\n".utf8).write(to: URL(fileURLWithPath: secret))
        let escape = roots.appendingPathComponent("escape.png").path
        try FileManager.default.createSymbolicLink(atPath: escape, withDestinationPath: secret)
        let fifo = roots.appendingPathComponent("pipe.png").path
        #expect(mkfifo(fifo, 0o600) == 0)
        // A PNG header declaring 4294967295 x 4294967295 pixels: more than an Int holds, multiplied.
        let absurd = roots.appendingPathComponent("absurd.png").path
        try Data(PNGWriter.header(width: .max, height: .max)).write(to: URL(fileURLWithPath: absurd))
        let server = try NginxServer()
        try server.put("/inside.png", try Data(contentsOf: URL(fileURLWithPath: good)))
        let loopback = server.url("/inside.png")
        let inputs = [good, escape, secret, fifo, absurd, "/proc/self/environ", "tar:\(secret)!/a.png", loopback]
        try cluster.check(try cluster.run(["enqueue", "caption"] + inputs + ["--job", "hostile", "--model", "tiny"]))
        let worker = try cluster.startWorker(["--image-roots", roots.path + ",/proc"])
        let counts = try cluster.waitUntilFinished(job: "hostile")
        #expect(counts == ["done": 1, "failed": 7], "\(counts)")
        let rows = try cluster.query("SELECT image_uri, status, coalesce(last_error, '') AS e FROM tasks")
        var reasons: [String: String] = [:]
        for row in rows { reasons[try row.string("image_uri")] = try row.string("e") }
        #expect(reasons[good] == "")
        for path in [escape, secret, "tar:\(secret)!/a.png"] {
            #expect(reasons[path]?.contains("outside the worker's image roots") == true, "\(path): \(reasons)")
        }
        #expect(reasons[fifo]?.contains("not a regular file (a FIFO)") == true, "\(reasons)")
        #expect(reasons[absurd]?.contains("4294967295 x 4294967295") == true, "\(reasons)")
        #expect(reasons["/proc/self/environ"]?.contains("a file of the kernel's /proc, /sys or /dev") == true)
        #expect(reasons[loopback]?.contains("refused to connect to 127.0.0.1 (loopback)") == true, "\(reasons)")
        #expect(!reasons.values.contains { $0.contains("root:") || $0.contains("72 6f") })
        #expect(!server.accessLog().contains { $0.contains("/inside.png") }, "the server saw no request")
        try cluster.check(
            try cluster.run(["enqueue", "caption", good, "--job", "after", "--model", "tiny", "--max-new-tokens", "3"]))
        #expect(try cluster.waitUntilFinished(job: "after") == ["done": 1])
        #expect(worker.isRunning)
        cluster.stopWorkers()
    }

    /// The chat model pads images to a square before resizing: a 65500 x 1 image padded in memory would take
    /// 12.9 GB. The worker's peak resident memory stays within what the tiny model and a few such rows need.
    @Test func thinImagesOnTheChatModelRunInBoundedMemory() throws {
        let cluster = try Cluster()
        let chat = cluster.scratch.appendingPathComponent("chat").path
        try cluster.check(
            try cluster.run(["model", "init", "--preset", "tiny", "--variant", "chat", "--seed", "5", "--out", chat]))
        cluster.otherModels.append(chat)
        var paths: [String] = []
        for (width, height) in [(65500, 1), (1, 65500)] {
            let path = cluster.scratch.appendingPathComponent("thin-\(width)x\(height).png").path
            try PNGWriter.solid(width: width, height: height, color: (220, 30, 40)).write(
                to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        try cluster.check(
            try cluster.run(
                ["enqueue", "chat"] + paths + [
                    "--question", "What is this?", "--job", "thin", "--model", chat, "--max-new-tokens", "3",
                ]))
        let worker = try cluster.startWorker(["--max-memory", "2G"], model: chat)
        #expect(try cluster.waitUntilFinished(job: "thin") == ["done": 2], "\(cluster.workerLogs())")
        let peak = ProcessMemory.peakResidentKilobytes(of: worker.processIdentifier)
        #expect(peak > 0 && peak < 1 << 20, "the worker's peak resident memory: \(peak) kB")
        let sizes = try cluster.query("SELECT image_width AS w, image_height AS h FROM tasks ORDER BY w").map {
            "\(try $0.int("w"))x\(try $0.int("h"))"
        }
        #expect(sizes == ["1x65500", "65500x1"])
        cluster.stopWorkers()
    }
}
