// `enqueue` of long listings a chunk at a time, and `enqueue --dry-run`, through the binary against the real
// PostgreSQL and RabbitMQ.

import Foundation
import TestSupport
import Testing

@Suite struct EnqueueStreamingTests {
    static let images = EnqueueCommandTests.images

    static func sql(_ sandbox: Sandbox, _ statement: String) throws -> String {
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"), [sandbox.databaseURL, "-v", "ON_ERROR_STOP=1", "-tAc", statement])
        guard result.status == 0 else { throw SandboxError(message: result.output) }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func file(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent(
            "infmllm-\(UInt64.random(in: 0...UInt64.max).hex)-\(name)")
    }

    /// A manifest longer than a chunk and the progress interval: every image once (an image repeated in a later
    /// chunk keeps its first line's fields), one message each, and progress lines on the way.
    @Test func aLongManifestIsWrittenAChunkAtATimeWithEachImageOnce() throws {
        let sandbox = try Sandbox.make()
        let manifest = Self.file("long.jsonl")
        defer {
            sandbox.remove()
            try? FileManager.default.removeItem(at: manifest)
        }
        let count = 100_001
        var lines = (0..<count).map { #"{"image": "https://images.example.org/\#($0).jpg", "line": \#($0)}"# }
        lines.append(#"{"image": "https://images.example.org/0.jpg", "line": "again"}"#)  // a later chunk
        lines.append(#"{"image": "https://images.example.org/\#(count - 1).jpg", "line": "again"}"#)  // the same chunk
        try Data(lines.joined(separator: "\n").utf8).write(to: manifest)
        let result = try sandbox.run([
            "enqueue", "caption", "--manifest", manifest.path, "--job", "long", "--model", "tiny",
        ])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("enqueue: 100000 images listed"), "\(result.output)")
        #expect(result.output.contains("job long: \(count + 2) images, \(count) new tasks queued"), "\(result.output)")
        #expect(try Self.sql(sandbox, "SELECT count(*) FROM tasks") == "\(count)")
        #expect(
            try Self.sql(sandbox, "SELECT metadata->>'line' FROM tasks WHERE image_uri LIKE '%/0.jpg'") == "0",
            "the first line's fields stay")
        #expect(try Self.sql(sandbox, "SELECT count(*) FROM tasks WHERE published_at IS NULL") == "0")
        #expect(try sandbox.queueDepth() == count)
    }

    /// A dry run counts exactly what a run would add (the job's own tasks left out) and writes nothing; its estimate
    /// is the mean worker time of the model's computed results with the same settings, per device.
    @Test func aDryRunCountsAndEstimatesWithoutWriting() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let three = ["rgb_64x64.png", "gray_64x48.png", "rgb_64x64.jpg"].map { Self.images + "/" + $0 }
        let dry = try sandbox.run(
            ["enqueue", "caption"] + three + ["--job", "d", "--model", "tiny", "--dry-run", "--json"])
        let first = EnqueueCommandTests.json(dry.output)
        #expect(dry.status == 0 && first["dry_run"] as? Bool == true, "\(dry.output)")
        #expect(first["added"] as? Int == 3 && first["created"] as? Bool == true && first["job_id"] == nil)
        #expect(first["published"] as? Int == 0 && (first["estimate"] as? [Any])?.isEmpty == true)
        #expect(try Self.sql(sandbox, "SELECT count(*) FROM jobs") == "0")
        #expect(try Self.sql(sandbox, "SELECT count(*) FROM tasks") == "0")

        let real = try sandbox.run(
            ["enqueue", "caption"] + Array(three.prefix(2)) + ["--job", "d", "--model", "tiny"])
        let other = try sandbox.run(["enqueue", "caption", three[2], "--job", "other", "--model", "tiny"])
        #expect(real.status == 0 && other.status == 0, "\(real.output) \(other.output)")
        // Two computed results (6 s a task on average) and one copied from another, which says nothing of the cost.
        _ = try Self.sql(
            sandbox,
            """
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker, timings_ms, reused_from)
            SELECT t.id, t.job_id, 'a caption', 5, 2, 'tiny', 'p', '{}', 'cpu bf16', 'w',
                   CASE WHEN t.n = 1 THEN '{"vision": 1000, "generate": 3000}'::jsonb
                        WHEN t.n = 2 THEN '{"vision": 3000, "generate": 5000, "decode": 4000}'::jsonb
                        ELSE '{"vision": 900000, "generate": 900000}'::jsonb END,
                   CASE WHEN t.n = 3 THEN (SELECT min(id) FROM tasks) END
            FROM (SELECT *, row_number() OVER (ORDER BY id) AS n FROM tasks) t
            """)
        let again = try sandbox.run(
            ["enqueue", "caption"] + three + ["--job", "d", "--model", "tiny", "--dry-run", "--json"])
        let second = EnqueueCommandTests.json(again.output)
        #expect(second["added"] as? Int == 1 && second["created"] as? Bool == false, "\(again.output)")
        #expect(second["job_id"] as? Int == Int(try Self.sql(sandbox, "SELECT id FROM jobs WHERE name = 'd'")))
        let estimate = (second["estimate"] as? [[String: Any]]) ?? []
        #expect(estimate.count == 1 && estimate.first?["device"] as? String == "cpu bf16", "\(again.output)")
        #expect(estimate.first?["results"] as? Int == 2 && estimate.first?["seconds_per_task"] as? Double == 6)
        #expect(try Self.sql(sandbox, "SELECT count(*) FROM tasks") == "3")

        let text = try sandbox.run(["enqueue", "caption"] + three + ["--job", "d", "--model", "tiny", "--dry-run"])
        #expect(text.output.contains("1 new tasks would be queued"), "\(text.output)")
        #expect(text.output.contains("on cpu bf16, 6.00 s a task (mean of 2 results): 0:06 on one worker"))
        // Other decoding settings are another cost.
        let beams = try sandbox.run(
            ["enqueue", "caption"] + three + ["--job", "e", "--model", "tiny", "--beams", "3", "--dry-run"])
        #expect(beams.output.contains("no earlier results of this model with these settings"), "\(beams.output)")
        #expect(try Self.sql(sandbox, "SELECT count(*) FROM jobs") == "2")
    }

    /// `--urls -` and `--manifest -` read standard input (`find ... | infmllm enqueue ...`), once: --strict checks and
    /// writes in the same pass.
    @Test func standardInputIsAListOrAManifest() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let binary = try RepositoryFiles.binary().path
        func piped(_ input: String, _ arguments: String) throws -> ProcessResult {
            try ProcessResult.run(
                URL(fileURLWithPath: "/bin/sh"),
                ["-c", "printf '\(input)' | '\(binary)' enqueue \(arguments) --model tiny --json"],
                environment: sandbox.environment)
        }
        let list = "https://x.example/a.jpg\\ngs://bucket/c.jpg\\nhttps://x.example/b.jpg\\n"
        let urls = try piped(list, "caption --urls - --job piped")
        #expect(urls.status == 3 && urls.output.contains("standard input:2: "), "\(urls.output)")
        #expect(EnqueueCommandTests.json(urls.output)["added"] as? Int == 2)
        let strict = try piped(list, "caption --urls - --job strict --strict")
        #expect(strict.status != 0 && strict.output.contains("nothing was enqueued"), "\(strict.output)")
        let good = try piped(
            "https://x.example/d.jpg\\nhttps://x.example/e.jpg\\n", "caption --urls - --job strict --strict")
        #expect(EnqueueCommandTests.json(good.output)["added"] as? Int == 2, "one pass over the pipe: \(good.output)")
        let manifest = try piped(
            #"{"image": "https://x.example/f.jpg", "question": "What?", "id": 7}\n"#,
            "vqa --manifest - --job asked")
        #expect(EnqueueCommandTests.json(manifest.output)["added"] as? Int == 1, "\(manifest.output)")
        #expect(
            try Self.sql(sandbox, "SELECT input_text || metadata::text FROM tasks WHERE image_uri LIKE '%f.jpg'")
                == #"What?{"id": 7}"#)
        let both = try piped("", "caption --urls - --manifest - --job both")
        #expect(both.status != 0 && both.output.contains("standard input (-) can be one of"), "\(both.output)")
    }
}
