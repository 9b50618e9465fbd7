// `enqueue`, `jobs` and `show` through the binary against the real PostgreSQL and RabbitMQ.

import Foundation
import Postgres
import RabbitMQ
import TestSupport
import Testing

@testable import infmllm

/// A migrated, empty database and a private queue prefix, removed afterwards.
struct Sandbox {
    let databaseURL: String
    let prefix: String
    let database: String

    static func make() throws -> Sandbox {
        let server = CommandLineTests.serverURL
        let database = "infmllm_enqueue_\(UInt64.random(in: 0...UInt64.max).hex)"
        let admin = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"), [server, "-qc", "CREATE DATABASE \(database)"])
        guard admin.status == 0 else { throw SandboxError(message: admin.output) }
        let sandbox = Sandbox(
            databaseURL: String(server[...server.lastIndex(of: "/")!]) + database,
            prefix: "infmllm-enqueue-\(UInt64.random(in: 0...UInt64.max).hex)", database: database)
        let migrate = try sandbox.run(["migrate"])
        guard migrate.status == 0 else { throw SandboxError(message: migrate.output) }
        return sandbox
    }

    var environment: [String: String] { ["INFMLLM_DATABASE_URL": databaseURL, "INFMLLM_QUEUE_PREFIX": prefix] }

    func run(_ arguments: [String]) throws -> ProcessResult {
        try ProcessResult.run(try RepositoryFiles.binary(), arguments, environment: environment)
    }

    /// Deletes the database and the queues of `models` (the tiny preset's, and any other a test enqueued for).
    func remove(models: [String] = ["tiny"]) {
        CommandLineTests.deleteTopology(prefix: prefix, models: models)
        _ = try? ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"),
            [CommandLineTests.serverURL, "-qc", "DROP DATABASE \(database) WITH (FORCE)"])
    }

    func queueDepth() throws -> Int {
        let url = ProcessInfo.processInfo.environment["INFMLLM_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
        return try AMQPConnection(url: AMQPURL(url)).queueCounts(TaskTopology(prefix: prefix, model: "tiny").queue)
            .messageCount
    }
}

struct SandboxError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

@Suite struct EnqueueCommandTests {
    static let images = RepositoryFiles.path("Tests/ImagingTests/Fixtures/images")

    static func json(_ output: String) -> [String: Any] {
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    /// `--archive-list FILE` names the archives a line each, relative paths from the list's folder.
    @Test func anArchiveListEnqueuesTheMembersOfEachArchive() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let folder = EnqueueStreamingTests.file("archive-list")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("shards"), withIntermediateDirectories: true)
        let packed = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "cd '\(Self.images)' && tar -cf '\(folder.path)/shards/a.tar' rgb_64x64.png gray_64x48.jpg"])
        #expect(packed.status == 0, "\(packed.output)")
        let list = folder.appendingPathComponent("shards.txt")
        try Data("# the shards\nshards/a.tar\n".utf8).write(to: list)
        let enqueued = try sandbox.run([
            "enqueue", "caption", "--archive-list", list.path, "--job", "listed", "--model", "tiny", "--json",
        ])
        #expect(enqueued.status == 0 && Self.json(enqueued.output)["added"] as? Int == 2, "\(enqueued.output)")
        let both = try sandbox.run([
            "enqueue", "caption", "--archive-list", "-", "--urls", "-", "--job", "listed", "--model", "tiny",
        ])
        #expect(both.status != 0 && both.output.contains("standard input (-) can be one of"), "\(both.output)")
    }

    /// --skip-captioned leaves out image files with a caption file beside them (not empty; a link to one counts),
    /// and says how many; an image named like its own caption file is not captioned by itself.
    @Test func imagesWithACaptionBesideThemAreSkippedWhenAsked() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let folder = EnqueueStreamingTests.file("captioned")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["a.png", "b.png", "c.png", "d.png", "scan.txt"] {
            try FileManager.default.copyItem(
                atPath: Self.images + "/rgb_64x64.png", toPath: folder.appendingPathComponent(name).path)
        }
        try Data("a hand-written caption\n".utf8).write(to: folder.appendingPathComponent("a.txt"))
        try Data().write(to: folder.appendingPathComponent("b.txt"))
        try FileManager.default.createSymbolicLink(
            atPath: folder.appendingPathComponent("d.txt").path, withDestinationPath: "a.txt")
        let enqueued = try sandbox.run([
            "enqueue", "caption", "--dir", folder.path, "--include", "*.png", "--include", "scan.txt",
            "--skip-captioned", "--job", "captions", "--model", "tiny", "--json",
        ])
        let outcome = Self.json(enqueued.output)
        #expect(outcome["found"] as? Int == 5 && outcome["skipped_captioned"] as? Int == 2, "\(enqueued.output)")
        #expect(outcome["added"] as? Int == 3)
        let uris = try EnqueueStreamingTests.sql(sandbox, "SELECT image_uri FROM tasks ORDER BY image_uri")
        #expect(
            uris.split(separator: "\n").map { ($0 as NSString).lastPathComponent } == ["b.png", "c.png", "scan.txt"])
        let text = try sandbox.run([
            "enqueue", "caption", "--dir", folder.path, "--skip-captioned", "--job", "plain", "--model", "tiny",
        ])
        #expect(
            text.output.contains("4 images, 2 new tasks queued, 0 skipped as done, 2 skipped as captioned"),
            "\(text.output)")
    }

    @Test func aDirectoryTwiceIntoOneJobAddsEachImageOnce() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let jpegs = try FileManager.default.contentsOfDirectory(atPath: Self.images).filter { $0.hasSuffix(".jpg") }
            .count
        let arguments = [
            "enqueue", "caption", "--dir", Self.images, "--include", "*.JPG", "--job", "archive", "--model", "tiny",
            "--json",
        ]
        let first = Self.json(try sandbox.run(arguments).output)
        #expect(first["added"] as? Int == jpegs && first["created"] as? Bool == true)
        let second = Self.json(try sandbox.run(arguments).output)
        #expect(second["added"] as? Int == 0 && second["found"] as? Int == jpegs && second["created"] as? Bool == false)
        #expect(try sandbox.queueDepth() == jpegs)

        let all = try sandbox.run([
            "enqueue", "caption", "--dir", Self.images, "--exclude", "rgb*", "--job", "archive", "--model", "tiny",
            "--json",
        ])
        let third = Self.json(all.output)
        #expect((third["added"] as? Int ?? 0) > 0, "\(all.output)")

        let jobs = try sandbox.run(["jobs", "--json"])
        let list = try JSONSerialization.jsonObject(with: Data(jobs.output.utf8)) as? [[String: Any]]
        let counts = list?.first?["counts"] as? [String: Int]
        #expect(counts?["queued"] == jpegs + (third["added"] as? Int ?? 0))
        let show = try sandbox.run(["show", "archive", "--json"])
        #expect(show.status == 0 && show.output.contains("\"name\":\"archive\""))
    }

    @Test func manifestsCarryPerImageText() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let directory = ScratchFolders.url("manifests")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let csv =
            "image,question\n\(Self.images)/rgb_64x64.png,\"What is it, really?\"\n\(Self.images)/gray_64x48.png,\"Say \"\"hi\"\"\"\n"
        try csv.write(to: directory.appendingPathComponent("q.csv"), atomically: true, encoding: .utf8)
        let result = try sandbox.run([
            "enqueue", "vqa", "--manifest", directory.appendingPathComponent("q.csv").path, "--job", "q", "--model",
            "tiny", "--json",
        ])
        #expect(Self.json(result.output)["added"] as? Int == 2, "\(result.output)")
        // A relative image path is resolved against the manifest's directory.
        try "{\"image\": \"pictures/a.png\", \"expression\": \"the square\"}\n".write(
            to: directory.appendingPathComponent("g.jsonl"), atomically: true, encoding: .utf8)
        let grounding = try sandbox.run(
            [
                "enqueue", "ground", "--manifest", directory.appendingPathComponent("g.jsonl").path, "--job", "g",
                "--model", "tiny", "--json",
            ])
        #expect(Self.json(grounding.output)["added"] as? Int == 1, "\(grounding.output)")
        let stored = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"),
            [
                sandbox.databaseURL, "-tAc",
                "SELECT image_uri || '|' || input_text FROM tasks WHERE job_id = (SELECT id FROM jobs WHERE name = 'g')",
            ])
        #expect(
            stored.output.trimmingCharacters(in: .whitespacesAndNewlines) == directory.appendingPathComponent(
                "pictures/a.png"
            ).path + "|the square")
    }

    @Test func badManifestLinesAreListedAndTheGoodOnesQueued() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let manifest = ScratchFolders.path("bad-lines", suffix: ".jsonl")
        let long = String(repeating: "x", count: 9000)
        try [
            #"{"image": "\#(Self.images)/rgb_64x64.png", "question": "What is it?"}"#,
            #"{"image": "\#(Self.images)/gray_64x48.png", "question": "a NUL \u0000 here"}"#,
            #"{"image": "\#(Self.images)/gray_64x48.png"}"#,
            #"{"image": "\#(Self.images)/gray_64x48.png", "question": "\#(long)"}"#,
            "not json at all \(long)",
            #"{"image": "\#(Self.images)/gray_64x48.png", "question": "Which colour?"}"#,
        ].joined(separator: "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let strict = try sandbox.run([
            "enqueue", "vqa", "--manifest", manifest, "--job", "s", "--model", "tiny", "--strict",
        ])
        #expect(strict.status != 0 && strict.output.contains("nothing was enqueued"), "\(strict.output)")
        #expect(try sandbox.run(["show", "s"]).output.contains("no job s"), "--strict wrote nothing")
        let strictDry = try sandbox.run([
            "enqueue", "vqa", "--manifest", manifest, "--job", "s", "--model", "tiny", "--strict", "--dry-run",
        ])
        #expect(
            strictDry.status != 0 && strictDry.output.contains("nothing would be enqueued"), "\(strictDry.output)")
        let result = try sandbox.run([
            "enqueue", "vqa", "--manifest", manifest, "--job", "m", "--model", "tiny", "--json",
        ])
        #expect(result.status == 3, "\(result.output)")
        for (line, reason) in [(2, "NUL"), (3, "no question"), (4, "over 8192 bytes"), (5, "not an object")] {
            #expect(result.output.contains("\(manifest):\(line): ") && result.output.contains(reason), "\(line)")
        }
        // Errors quote user text only in short excerpts.
        #expect(!result.output.contains(String(repeating: "x", count: 100)))
        #expect(Self.json(result.output)["added"] as? Int == 2, "\(result.output)")
        #expect((Self.json(result.output)["refused"] as? [Any])?.count == 4)
        #expect(try sandbox.queueDepth() == 2)
        // --strict on good lines commits them all, then publishes.
        let good = manifest + ".good.jsonl"
        defer { try? FileManager.default.removeItem(atPath: good) }
        try [
            #"{"image": "\#(Self.images)/rgb_64x64.jpg", "question": "What is it?"}"#,
            #"{"image": "\#(Self.images)/gray_64x48.jpg", "question": "What is it?"}"#,
        ].joined(separator: "\n").write(toFile: good, atomically: true, encoding: .utf8)
        let strictGood = try sandbox.run([
            "enqueue", "vqa", "--manifest", good, "--job", "s", "--model", "tiny", "--strict", "--json",
        ])
        #expect(
            strictGood.status == 0 && Self.json(strictGood.output)["published"] as? Int == 2, "\(strictGood.output)")
        #expect(try sandbox.queueDepth() == 4)
    }

    @Test func missingTextAndConflictingJobsAreRefused() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let noQuestion = try sandbox.run(["enqueue", "vqa", Self.images + "/rgb_64x64.png", "--model", "tiny"])
        #expect(noQuestion.status != 0 && noQuestion.output.contains("needs --question"))
        _ = try sandbox.run(["enqueue", "caption", Self.images + "/rgb_64x64.png", "--job", "one", "--model", "tiny"])
        let conflict = try sandbox.run([
            "enqueue", "ground", Self.images + "/rgb_64x64.png", "--expression", "x", "--job", "one", "--model", "tiny",
        ])
        #expect(conflict.status != 0 && conflict.output.contains("already exists for caption"))
        #expect(!conflict.output.contains("run the same command"), "a refusal is not an interruption")
        // An archive that cannot be opened is refused before the folder's images are written.
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent(
            "garbage-\(UInt64.random(in: 0...UInt64.max).hex).zip")
        defer { try? FileManager.default.removeItem(at: garbage) }
        try Data("not a zip at all".utf8).write(to: garbage)
        let archive = try sandbox.run([
            "enqueue", "caption", "--dir", Self.images, "--archive", garbage.path, "--job", "z", "--model", "tiny",
        ])
        #expect(archive.status != 0 && archive.output.contains(garbage.path), "\(archive.output)")
        #expect(try sandbox.run(["show", "z"]).output.contains("no job z"))
    }

    @Test func settingsNoPromptCouldFitAreRefusedAtEnqueue() throws {
        let sandbox = try Sandbox.make()
        let model = ScratchFolders.path("infmllm-tiny")
        defer {
            sandbox.remove(models: ["tiny", model])
            try? FileManager.default.removeItem(atPath: model)
        }
        #expect(try sandbox.run(["model", "init", "--preset", "tiny", "--out", model]).status == 0)
        // The tiny model has 512 positions and 4 visual tokens.
        let refused = try sandbox.run([
            "enqueue", "caption", Self.images + "/rgb_64x64.png", "--model", model, "--max-new-tokens", "600",
        ])
        #expect(refused.status != 0 && refused.output.contains("can never fit"), "\(refused.output)")
        let accepted = try sandbox.run([
            "enqueue", "caption", Self.images + "/rgb_64x64.png", "--model", model, "--max-new-tokens", "100",
        ])
        #expect(accepted.status == 0, "\(accepted.output)")
    }

    /// `--model DIR/.` (`--model .` inside the model's folder) routes by the folder's name, as the worker serving
    /// that folder consumes it, not by a key made of the dot.
    @Test func aModelDirectoryGivenAsItsDotRoutesByItsName() throws {
        let sandbox = try Sandbox.make()
        let model = ScratchFolders.path("infmllm-tiny")
        defer {
            sandbox.remove(models: [model])
            try? FileManager.default.removeItem(atPath: model)
        }
        #expect(try sandbox.run(["model", "init", "--preset", "tiny", "--out", model]).status == 0)
        let result = try sandbox.run([
            "enqueue", "caption", Self.images + "/rgb_64x64.png", "--model", model + "/.", "--json",
        ])
        #expect(result.status == 0, "\(result.output)")
        let key = (model as NSString).lastPathComponent
        #expect(Self.json(result.output)["model_key"] as? String == key, "\(result.output)")
    }

    /// The dry run's estimate on one worker, and on the workers serving the queue when there are several.
    @Test func theEstimateSplitsOverTheWorkersServingTheQueue() {
        let estimate = EnqueueCommand.Estimate(
            TaskCost(device: "cpu bf16", results: 10, milliseconds: 12_000), tasks: 1_000)
        #expect(estimate.worker_seconds == 12_000)
        let one = EnqueueCommand.estimateLines([estimate], tasks: 1_000, consumers: 1)
        #expect(one == "dry run: on cpu bf16, 12.00 s a task (mean of 10 results): 3:20:00 on one worker\n")
        let four = EnqueueCommand.estimateLines([estimate], tasks: 1_000, consumers: 4)
        #expect(four.hasSuffix("3:20:00 on one worker, 50:00 on the 4 serving the queue now\n"), "\(four)")
        #expect(EnqueueCommand.estimateLines([], tasks: 1_000, consumers: nil).contains("no earlier results"))
    }
}
