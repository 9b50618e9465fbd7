// End to end through the real RabbitMQ and PostgreSQL: enqueue, workers, results in the views; bad input,
// bad messages, SIGTERM, kill -9 and several workers.

import Foundation
import Jobs
import Postgres
import RabbitMQ
import TestSupport
import Testing

@Suite struct JobSystemTests {
    @Test func aJobOf200ImagesEndsWithOneResultPerTask() throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 200)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "big", "--model", "tiny", "--max-new-tokens", "6",
            ]))
        try cluster.startWorker(["--batch-size", "8"])
        let counts = try cluster.waitUntilFinished(job: "big")
        #expect(counts == ["done": 200], "\(cluster.workerLogs())")
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == 200 && results.int("d") == 200)
        let captions = try cluster.query("SELECT count(*) AS n FROM captions WHERE job = 'big' AND caption IS NOT NULL")
            .first!
        #expect(try captions.int("n") == 200)
        let provenance = try cluster.query(
            "SELECT count(*) AS n FROM results WHERE model_name = 'tiny' AND weights_sha256 ~ '^[0-9a-f]{64}$' AND worker = 'w0' AND device = 'cpu f32' AND (timings_ms ?& array['vision', 'prefill', 'decode', 'generate'])"
        ).first!
        #expect(try provenance.int("n") == 200)
        // The recorded hash is the weights file's SHA-256, as sha256sum computes it.
        let sha256sum = Process()
        sha256sum.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sha256sum.arguments = [cluster.model + "/model.safetensors"]
        let pipe = Pipe()
        sha256sum.standardOutput = pipe
        try sha256sum.run()
        let expected = String(
            String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64))
        sha256sum.waitUntilExit()
        let recorded = try cluster.query("SELECT DISTINCT weights_sha256 AS h FROM results").map { try $0.string("h") }
        #expect(recorded == [expected])
        let sized = try cluster.query(
            "SELECT count(*) AS n FROM tasks WHERE image_width > 0 AND image_sha256 IS NOT NULL"
        ).first!
        #expect(try sized.int("n") == 200)
        cluster.stopWorkers()
    }

    @Test func badImagesFailAloneWithTheirReasons() throws {
        let cluster = try Cluster()
        let directory = cluster.scratch.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("this is not a jpeg".utf8).write(to: directory.appendingPathComponent("corrupt.jpg"))
        try Data().write(to: directory.appendingPathComponent("empty.png"))
        var bomb = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8))
        bomb.append(contentsOf: [0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0, 8, 2, 0, 0, 0, 0, 0, 0, 0])
        try bomb.write(to: directory.appendingPathComponent("bomb.png"))
        for name in ["rgb_64x64.png", "gray_64x48.jpg"] {
            try FileManager.default.copyItem(
                atPath: Cluster.images + "/" + name, toPath: directory.appendingPathComponent(name).path)
        }
        try cluster.check(
            try cluster.run([
                "enqueue", "vqa", "--dir", directory.path, "--question", "What is it?", "--job", "bad", "--model",
                "tiny", "--max-new-tokens", "4",
            ]))
        try cluster.check(
            try cluster.run([
                "enqueue", "vqa", directory.appendingPathComponent("missing.jpg").path, "--question", "Where?", "--job",
                "bad", "--model", "tiny", "--max-new-tokens", "4",
            ]))
        try cluster.startWorker(["--max-image-pixels", "1000000"])
        let counts = try cluster.waitUntilFinished(job: "bad")
        #expect(counts == ["done": 2, "failed": 4], "\(cluster.workerLogs())")
        let reasons = try cluster.query(
            "SELECT image_uri, last_error FROM tasks WHERE status = 'failed' ORDER BY image_uri"
        )
        .map { (try $0.string("image_uri"), try $0.string("last_error")) }
        let expected = [
            "bomb.png": "pixels is more than the limit", "corrupt.jpg": "not a JPEG, PNG, WebP, GIF, HEIC or AVIF",
            "empty.png": "empty",
            "missing.jpg": "no such file",
        ]
        for (uri, reason) in reasons {
            let name = (uri as NSString).lastPathComponent
            #expect(reason.contains(uri) && reason.contains(expected[name] ?? "?"), "\(name): \(reason)")
        }
        cluster.stopWorkers()
    }

    @Test func badMessagesAreParkedWithTheirReasonAndTheJobGoesOn() throws {
        let cluster = try Cluster()
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", Cluster.images, "--include", "rgb_6*", "--job", "msgs", "--model",
                "tiny", "--max-new-tokens", "4",
            ]))
        let connection = try AMQPConnection(url: AMQPURL(Cluster.amqpURL))
        let topology = TaskTopology(prefix: cluster.prefix, model: cluster.model)
        let bodies: [[UInt8]] = [
            Array("{not json".utf8), Array(#"{"v":99,"task_id":1,"job_id":1}"#.utf8),
            [UInt8](repeating: 0x20, count: 10_000),
        ]
        try connection.publish(
            bodies.map { OutgoingMessage(exchange: topology.exchange, routingKey: topology.routingKey, body: $0) })
        try cluster.startWorker()
        let counts = try cluster.waitUntilFinished(job: "msgs")
        #expect(counts["failed"] == nil && (counts["done"] ?? 0) > 0)
        var reasons: [String] = []
        let deadline = Date().addingTimeInterval(30)
        while reasons.count < 3, Date() < deadline {
            if let message = try connection.get(from: topology.rejectedQueue) {
                if case let .string(reason) = message.headers["x-infmllm-error"] { reasons.append(reason) }
                try connection.ack(message.deliveryTag)
            } else {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        #expect(reasons.count == 3)
        #expect(
            reasons.contains { $0.contains("malformed") } && reasons.contains { $0.contains("version 99") }
                && reasons.contains { $0.contains("exceeds") })
        cluster.stopWorkers()
    }

    @Test func sigtermFinishesTheTasksInHandAndAnotherWorkerFinishesTheRest() throws {
        let cluster = try Cluster(preset: "bench")
        let images = try cluster.imageDirectory(count: 40)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "drain", "--model", "bench", "--max-new-tokens", "12",
                "--min-new-tokens", "12",
            ]))
        // The worker starts tasks and holds before its first model step, so the signal lands while they are in
        // flight, however fast the machine.
        cluster.hold()
        let first = try cluster.startWorker(["--batch-size", "4"])
        try cluster.wait(for: "the first tasks held in flight") { cluster.workerLogs().contains("holding while") }
        let started = try #require(try cluster.counts(job: "drain")["running"])
        first.terminate()
        try cluster.wait(for: "the messages not started going back") {
            cluster.workerLogs().contains("went back to the queue")
        }
        cluster.release()
        first.waitUntilExit()
        #expect(first.terminationStatus == 0, "\(cluster.workerLogs())")
        let afterStop = try cluster.counts(job: "drain")
        #expect(afterStop["running"] == nil && afterStop["done"] == started, "the tasks in hand finished: \(afterStop)")
        #expect(afterStop["queued"] == 40 - started)
        try cluster.startWorker(["--batch-size", "8"])
        let counts = try cluster.waitUntilFinished(job: "drain")
        #expect(counts == ["done": 40])
        #expect(try cluster.query("SELECT count(*) AS n FROM results").first!.int("n") == 40)
        #expect(try cluster.query("SELECT max(attempts) AS m FROM tasks").first!.int("m") == 1, "none started twice")
        cluster.stopWorkers()
    }

    @Test func killNineRepeatedlyLosesNothingAndDuplicatesNothing() throws {
        let cluster = try Cluster(preset: "bench", deliveryLimit: 20)
        let images = try cluster.imageDirectory(count: 48)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "kill", "--model", "bench", "--max-new-tokens", "10",
                "--min-new-tokens", "10",
            ]))
        // Each worker is killed while it holds tasks it started, before it can record any of them.
        cluster.hold()
        for round in 1...3 {
            let worker = try cluster.startWorker(["--batch-size", "4"])
            try cluster.wait(for: "worker \(round) holding tasks in flight") {
                cluster.workerLogs().components(separatedBy: "holding while").count - 1 == round
            }
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()
        }
        #expect(try cluster.counts(job: "kill")["done"] == nil, "every kill came before a result")
        cluster.release()
        try cluster.startWorker(["--batch-size", "8"])
        let counts = try cluster.waitUntilFinished(job: "kill")
        #expect(counts == ["done": 48], "\(counts)")
        let results = try cluster.query("SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM results").first!
        #expect(try results.int("n") == 48 && results.int("d") == 48)
        cluster.stopWorkers()
    }

    @Test(arguments: [2, 3])
    func workersShareOneJob(_ count: Int) throws {
        let cluster = try Cluster()
        let images = try cluster.imageDirectory(count: 150)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "shared", "--model", "tiny", "--max-new-tokens", "8",
            ]))
        for _ in 0..<count { try cluster.startWorker(["--batch-size", "4", "--prefetch", "4", "--threads", "1"]) }
        let counts = try cluster.waitUntilFinished(job: "shared")
        #expect(counts == ["done": 150])
        let perWorker = try cluster.query("SELECT worker, count(*) AS n FROM results GROUP BY worker").map {
            try $0.int("n")
        }
        #expect(perWorker.reduce(0, +) == 150)
        #expect(perWorker.count >= 2, "work was shared: \(perWorker)")
        cluster.stopWorkers()
    }

    @Test func retryCancelAndExport() throws {
        let cluster = try Cluster()
        let directory = cluster.scratch.appendingPathComponent("mixed")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Cluster.images + "/rgb_64x64.png", toPath: directory.appendingPathComponent("a.png").path)
        try Data("junk".utf8).write(to: directory.appendingPathComponent("b.png"))
        try cluster.check(
            try cluster.run([
                "enqueue", "ground", "--dir", directory.path, "--expression", "the square", "--job", "g", "--model",
                "tiny", "--max-new-tokens", "6",
            ]))
        try cluster.startWorker()
        #expect(try cluster.waitUntilFinished(job: "g") == ["done": 1, "failed": 1])
        // Fix the bad file and retry: the failed task runs again.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("b.png"))
        try FileManager.default.copyItem(
            atPath: Cluster.images + "/gray_64x48.png", toPath: directory.appendingPathComponent("b.png").path)
        let retry = try cluster.run(["retry", "g", "--json"])
        #expect(retry.output.contains("\"requeued\":1"), "\(retry.output)")
        #expect(try cluster.waitUntilFinished(job: "g") == ["done": 2])
        // The worker kept each output's log-probability; the view's confidence per token is in (0, 1].
        let scored = try cluster.query("SELECT DISTINCT task_id, output_logprob, confidence FROM boxes")
        #expect(scored.count == 2)
        for row in scored {
            let logprob = try row.text("output_logprob").flatMap(Double.init) ?? 1
            let confidence = try row.text("confidence").flatMap(Double.init) ?? 0
            #expect(logprob <= 0 && confidence > 0 && confidence <= 1, "\(logprob) \(confidence)")
        }
        let coco = try cluster.run(["export", "g", "--format", "coco"])
        let document = try JSONSerialization.jsonObject(with: Data(coco.output.utf8)) as? [String: Any]
        #expect((document?["images"] as? [Any])?.count == 2)
        #expect(document?["categories"] != nil)
        // Annotations are numbered from 1 and point at the images listed (written in one pass, spooled apart).
        let imageIDs = Set(((document?["images"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? Int })
        let annotations = (document?["annotations"] as? [[String: Any]]) ?? []
        #expect(annotations.compactMap { $0["id"] as? Int } == (0..<annotations.count).map { $0 + 1 })
        #expect(annotations.allSatisfy { imageIDs.contains($0["image_id"] as? Int ?? 0) })
        // --output: the same document, in place only once complete.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("g-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try cluster.check(try cluster.run(["export", "g", "--format", "coco", "--output", file]))
        #expect(try String(contentsOfFile: file, encoding: .utf8) == coco.output)
        #expect(!FileManager.default.fileExists(atPath: file + ".partial"))
        let jsonl = try cluster.run(["export", "g", "--format", "jsonl"])
        #expect(jsonl.output.split(separator: "\n").count == 2)
        // COCO names image files relative to --relative-to; txt writes a text file per image, beside the images
        // when --output is their folder, and leaves image files out without --relative-to.
        let relative = try cluster.run(["export", "g", "--format", "coco", "--relative-to", directory.path])
        let named = try JSONSerialization.jsonObject(with: Data(relative.output.utf8)) as? [String: Any]
        #expect(
            Set(((named?["images"] as? [[String: Any]]) ?? []).compactMap { $0["file_name"] as? String })
                == ["a.png", "b.png"])
        let byExpression = try cluster.run(["export", "g", "--format", "coco", "--categories", "expression"])
        let classes = try JSONSerialization.jsonObject(with: Data(byExpression.output.utf8)) as? [String: Any]
        #expect((classes?["categories"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["the square"])
        // Boxes as a model that finds them writes them (the tiny model's outputs hold none): bbox [x, y, w, h] in
        // pixels, one category per expression, an image listed once for all its tasks.
        _ = try cluster.query("INSERT INTO jobs (name, task_kind, model) VALUES ('found', 'ground', 'tiny')")
        _ = try cluster.query(
            """
            INSERT INTO tasks (job_id, image_uri, input_text, status, image_width, image_height)
            SELECT id, uri, expression, 'done', 100, 50 FROM jobs,
                   (VALUES ('/p/1.jpg', 'cat'), ('/p/1.jpg', 'dog'), ('/p/2.jpg', 'cat')) v (uri, expression)
            WHERE name = 'found'
            """)
        _ = try cluster.query(
            """
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker, output_logprob)
            SELECT t.id, t.job_id, '[0.1,0.2,0.5,0.6]', 1, 1, 'tiny', 'p', '{}', 'cpu', 'w', -0.5
            FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = 'found';
            """)
        _ = try cluster.query(
            """
            INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
            SELECT t.id, 0, 0.1, 0.2, 0.5, 0.6, 10, 10, 50, 30
            FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = 'found'
            """)
        let found =
            try JSONSerialization.jsonObject(
                with: Data(
                    try cluster.run(["export", "found", "--format", "coco", "--categories", "expression"]).output.utf8))
            as? [String: Any]
        #expect(
            (found?["images"] as? [[String: Any]])?.compactMap { $0["file_name"] as? String } == [
                "/p/1.jpg", "/p/2.jpg",
            ])
        #expect((found?["categories"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["cat", "dog"])
        let boxes = (found?["annotations"] as? [[String: Any]]) ?? []
        #expect(boxes.compactMap { $0["image_id"] as? Int } == [1, 1, 2])
        #expect(boxes.compactMap { $0["category_id"] as? Int } == [1, 2, 1])
        #expect(boxes.allSatisfy { ($0["bbox"] as? [Double]) == [10, 10, 40, 20] && ($0["area"] as? Double) == 800 })
        #expect(boxes.allSatisfy { abs(($0["score"] as? Double ?? 0) - exp(-0.5)) < 1e-12 }, "each box's confidence")
        let refused = try cluster.run(["export", "g", "--format", "coco", "--categories", "classes"])
        #expect(refused.status != 0 && refused.output.contains("--categories is single or expression"))
        let texts = try cluster.run([
            "export", "g", "--format", "txt", "--output", directory.path, "--relative-to", directory.path,
        ])
        #expect(texts.status == 0 && texts.output.contains("wrote 2 text files"), "\(texts.output)")
        let jsonlRows = jsonl.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        for image in ["a", "b"] {
            let output = jsonlRows.first { ($0["image"] as? String)?.hasSuffix("/\(image).png") == true }?["output"]
            #expect(
                try String(contentsOf: directory.appendingPathComponent("\(image).txt"), encoding: .utf8)
                    == "\(output as? String ?? "?")\n")
        }
        let elsewhere = cluster.scratch.appendingPathComponent("texts").path
        let unnamed = try cluster.run(["export", "g", "--format", "txt", "--output", elsewhere])
        #expect(
            unnamed.output.contains("wrote 0 text files") && unnamed.output.contains("--relative-to"),
            "\(unnamed.output)")
        // A text file that exists stays as it is (a caption written by hand) unless --overwrite.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("b.txt"))
        try Data("mine\n".utf8).write(to: directory.appendingPathComponent("a.txt"))
        let kept = try cluster.run(
            ["export", "g", "--format", "txt", "--output", directory.path, "--relative-to", directory.path])
        #expect(
            kept.output.contains("wrote 1 text files") && kept.output.contains("1 whose file exists"),
            "\(kept.output)")
        #expect(try String(contentsOf: directory.appendingPathComponent("a.txt"), encoding: .utf8) == "mine\n")
        try cluster.check(
            try cluster.run(
                [
                    "export", "g", "--format", "txt", "--output", directory.path, "--relative-to", directory.path,
                    "--overwrite",
                ]))
        #expect(try String(contentsOf: directory.appendingPathComponent("a.txt"), encoding: .utf8) != "mine\n")
        // --append adds the outputs after what a file holds (tags without a final line break, bytes kept as they
        // are), each with --prefix and --suffix around it; a file that did not exist is written as usual.
        let output = try String(contentsOf: directory.appendingPathComponent("a.txt"), encoding: .utf8)
        try Data([0x74, 0x61, 0x67, 0x73, 0xFF]).write(to: directory.appendingPathComponent("a.txt"))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("b.txt"))
        let appended = try cluster.run([
            "export", "g", "--format", "txt", "--output", directory.path, "--relative-to", directory.path, "--append",
            "--prefix", "sks, ", "--suffix", ".",
        ])
        #expect(appended.output.contains("wrote 2 text files to \(directory.path) (1 of them added to)"))
        #expect(
            try Data(contentsOf: directory.appendingPathComponent("a.txt"))
                == Data([0x74, 0x61, 0x67, 0x73, 0xFF, 0x0A]) + Data(("sks, " + output.dropLast() + ".\n").utf8))
        let bOutput = jsonlRows.first { ($0["image"] as? String)?.hasSuffix("/b.png") == true }?["output"] as? String
        #expect(
            try String(contentsOf: directory.appendingPathComponent("b.txt"), encoding: .utf8)
                == "sks, \(bOutput ?? "?").\n")
        // Run again (after a failure part way, say), it adds nothing: each file ends with its outputs already.
        let again = try cluster.run([
            "export", "g", "--format", "txt", "--output", directory.path, "--relative-to", directory.path, "--append",
            "--prefix", "sks, ", "--suffix", ".",
        ])
        #expect(
            again.output.contains("wrote 0 text files")
                && again.output.contains("2 whose file ends with these outputs"),
            "\(again.output)")
        // A folder where a text file would go is left alone, and the export goes on.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("b.txt"))
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("b.txt"), withIntermediateDirectories: false)
        let folder = try cluster.run([
            "export", "g", "--format", "txt", "--output", directory.path, "--relative-to", directory.path,
            "--overwrite",
        ])
        #expect(
            folder.status == 0 && folder.output.contains("wrote 1 text files")
                && folder.output.contains("1 whose file's name something other than a file takes"), "\(folder.output)")
        let clash = try cluster.run(["export", "g", "--format", "txt", "--output", "/tmp", "--append", "--overwrite"])
        #expect(clash.status != 0 && clash.output.contains("--append and --overwrite exclude each other"))
        for image in ["a", "b"] {
            try FileManager.default.removeItem(at: directory.appendingPathComponent("\(image).txt"))
        }
        // An image whose own name ends in .txt is never replaced by its caption.
        let scan = directory.appendingPathComponent("scan.txt")
        try FileManager.default.copyItem(atPath: Cluster.images + "/rgb_64x64.png", toPath: scan.path)
        _ = try cluster.query("INSERT INTO jobs (name, task_kind, model) VALUES ('scan', 'caption', 'tiny')")
        _ = try cluster.query(
            """
            INSERT INTO tasks (job_id, image_uri, status) SELECT id, \(scan.path), 'done' FROM jobs WHERE name = 'scan'
            """)
        _ = try cluster.query(
            """
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker)
            SELECT t.id, t.job_id, 'a scan', 1, 1, 'tiny', 'p', '{}', 'cpu', 'w'
            FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = 'scan'
            """)
        let image = try Data(contentsOf: scan)
        let spared = try cluster.run(
            [
                "export", "scan", "--format", "txt", "--output", directory.path, "--relative-to", directory.path,
                "--overwrite",
            ])
        #expect(spared.output.contains("wrote 0 text files"), "\(spared.output)")
        #expect(try Data(contentsOf: scan) == image)
        try FileManager.default.removeItem(at: scan)
        let csv = try cluster.run(["export", "g", "--format", "csv"])
        #expect(csv.output.hasPrefix("task_id,image,width,height,input,status"))
        // --skip-done leaves out what has a result from the same settings: a job with nothing to do, which has
        // ended. Other decoding settings are another result, and a job is added to with its own settings only.
        let ground = ["enqueue", "ground", "--dir", directory.path, "--expression", "the square", "--model", "tiny"]
        let same = try cluster.run(ground + ["--job", "g-again", "--max-new-tokens", "6", "--skip-done", "--json"])
        #expect(same.output.contains("\"added\":0") && same.output.contains("\"skipped_done\":2"), "\(same.output)")
        let ended = try cluster.run(["progress", "g-again", "--json", "--timeout", "10"])
        #expect(ended.status == 0 && ended.output.contains("\"finished\":true"), "\(ended.output)")
        let longer = try cluster.run(ground + ["--job", "g-longer", "--max-new-tokens", "7", "--skip-done", "--json"])
        #expect(longer.output.contains("\"added\":2"), "\(longer.output)")
        let other = try cluster.run(ground + ["--job", "g", "--max-new-tokens", "9"])
        #expect(other.status != 0 && other.output.contains("other decoding settings"), "\(other.output)")
        cluster.stopWorkers()

        try cluster.check(
            try cluster.run(["enqueue", "caption", "--dir", Cluster.images, "--job", "c", "--model", "tiny"]))
        let cancel = try cluster.run(["cancel", "c", "--json"])
        #expect(cancel.output.contains("\"cancelled\":"))
        // A cancelled job's tasks are never published again: neither a retry nor new tasks are taken.
        let retryCancelled = try cluster.run(["retry", "c"])
        #expect(
            retryCancelled.status != 0 && retryCancelled.output.contains("was cancelled"), "\(retryCancelled.output)")
        let addToCancelled = try cluster.run([
            "enqueue", "caption", "--dir", Cluster.images, "--job", "c", "--model", "tiny",
        ])
        #expect(
            addToCancelled.status != 0 && addToCancelled.output.contains("was cancelled"), "\(addToCancelled.output)")
        try cluster.startWorker()
        let counts = try cluster.waitUntilFinished(job: "c")
        #expect(counts.keys.sorted() == ["cancelled"], "\(counts)")
        let progress = try cluster.run(["progress", "c", "--json", "--timeout", "10"])
        #expect(progress.status == 0 && progress.output.contains("\"finished\":true"))
        cluster.stopWorkers()
    }
}

@Suite struct DeadLetterTests {
    @Test func aMessageThatKeepsKillingWorkersEndsAsAFailedTask() throws {
        // Delivery limit 0: a message returned once (its worker died) is dead-lettered at once.
        let cluster = try Cluster(preset: "bench", deliveryLimit: 0)
        let images = try cluster.imageDirectory(count: 24)
        try cluster.check(
            try cluster.run([
                "enqueue", "caption", "--dir", images, "--job", "poison", "--model", "bench", "--max-new-tokens", "10",
                "--min-new-tokens", "10",
            ]))
        // Killed while it holds the tasks it started: each of their messages comes back once and is dead-lettered.
        cluster.hold()
        let victim = try cluster.startWorker(["--batch-size", "4", "--prefetch", "8"])
        try cluster.wait(for: "tasks held in flight") { cluster.workerLogs().contains("holding while") }
        let started = try #require(try cluster.counts(job: "poison")["running"])
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        cluster.release()
        try cluster.startWorker(["--batch-size", "8"])
        let counts = try cluster.waitUntilFinished(job: "poison")
        let failed = counts["failed"] ?? 0
        #expect(failed == started && failed + (counts["done"] ?? 0) == 24, "\(counts), \(started) started")
        let reasons = try cluster.query("SELECT DISTINCT last_error FROM tasks WHERE status = 'failed'").map {
            try $0.string("last_error")
        }
        #expect(reasons.allSatisfy { $0.contains("dead-lettered") }, "\(reasons)")
        #expect(try cluster.query("SELECT count(*) AS n FROM results").first!.int("n") == counts["done"] ?? 0)
        cluster.stopWorkers()
    }
}
