// `enqueue --manifest FILE.parquet` through the binary against the real PostgreSQL and RabbitMQ, on files pyarrow
// writes (as LAION's, DataComp's and Hugging Face's metadata files are written): the image column named with
// --image-column, the other flat columns kept as each task's fields, nested ones named and left out, bad rows
// refused with their numbers, and a file without the column refused before anything is enqueued.

import Foundation
import TestSupport
import Testing

@Suite(.enabled(if: ParquetReaders.runs, "needs pyarrow: INFMLLM_PARQUET_PYTHON=$(tools/parquet_readers.sh)"))
struct EnqueueParquetTests {
    static let images = EnqueueCommandTests.images

    /// Writes `rows` (JSON objects, as pyarrow's `Table.from_pylist` takes them) to a Parquet file with pyarrow.
    static func write(_ rows: String, to path: String, options: String = "") throws {
        let python = try #require(ParquetReaders.python)
        let script = """
            import json, sys
            import pyarrow as pa, pyarrow.parquet as pq
            table = pa.Table.from_pylist(json.loads(sys.argv[2]))
            pq.write_table(table, sys.argv[1]\(options))
            """
        let result = try ProcessResult.run(URL(fileURLWithPath: python), ["-c", script, path, rows])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func aLAIONStyleFileIsEnqueuedWithItsColumnsAsFields() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let folder = ScratchFolders.url("enqueue-parquet")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("part-00000.parquet").path
        let rows = """
            [{"SAMPLE_ID": 17, "URL": "\(Self.images)/rgb_64x64.png", "TEXT": "a red square", "WIDTH": 64,
              "similarity": 0.31, "NSFW": "UNLIKELY", "tags": ["a", "b"]},
             {"SAMPLE_ID": 18, "URL": null, "TEXT": "no link", "WIDTH": null, "similarity": 0.2, "NSFW": null,
              "tags": []},
             {"SAMPLE_ID": 19, "URL": "\(Self.images)/gray_64x48.png", "TEXT": "café 👍", "WIDTH": null,
              "similarity": 0.5, "NSFW": "NSFW", "tags": null},
             {"SAMPLE_ID": 20, "URL": "gopher://example.com/a.jpg", "TEXT": "", "WIDTH": 1, "similarity": 0.1,
              "NSFW": null, "tags": null},
             {"SAMPLE_ID": 21, "URL": "pictures/a.png", "TEXT": "relative", "WIDTH": 2, "similarity": 0.9,
              "NSFW": null, "tags": null}]
            """
        try Self.write(rows, to: path, options: ", compression='zstd', row_group_size=2")

        // Without --image-column: refused, naming the columns and the flag; nothing enqueued.
        let refused = try sandbox.run(["enqueue", "caption", "--manifest", path, "--job", "p", "--model", "tiny"])
        #expect(refused.status != 0, "\(refused.output)")
        #expect(refused.output.contains("no \"image\" column (it has SAMPLE_ID, URL, TEXT"), "\(refused.output)")
        #expect(refused.output.contains("--image-column"))
        #expect(try sandbox.run(["show", "p"]).output.contains("no job p"))

        let result = try sandbox.run([
            "enqueue", "caption", "--manifest", path, "--image-column", "URL", "--job", "p", "--model", "tiny",
            "--json",
        ])
        #expect(result.status == 3, "\(result.output)")
        let outcome = EnqueueCommandTests.json(result.output)
        #expect(outcome["added"] as? Int == 3, "\(result.output)")
        #expect(outcome["unread_columns"] as? [String] == ["tags (a list)"])
        let reasons = (outcome["refused"] as? [[String: Any]] ?? []).map {
            "\($0["line"] ?? ""): \($0["reason"] ?? "")"
        }
        #expect(reasons.count == 2 && reasons[0] == "2: no image (null)" && reasons[1].hasPrefix("4: "), "\(reasons)")
        #expect(result.output.contains("\(path):4: ") && result.output.contains("gopher"), "\(result.output)")
        #expect(try sandbox.queueDepth() == 3)

        let stored = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"),
            [
                sandbox.databaseURL, "-tAc",
                "SELECT image_uri || ' ' || metadata::text FROM tasks ORDER BY (metadata->>'SAMPLE_ID')::int",
            ])
        let lines = stored.output.split(separator: "\n").map(String.init)
        #expect(
            lines == [
                "\(Self.images)/rgb_64x64.png "
                    + #"{"NSFW": "UNLIKELY", "TEXT": "a red square", "WIDTH": 64, "SAMPLE_ID": 17, "#
                    + #""similarity": 0.31}"#,
                "\(Self.images)/gray_64x48.png "
                    + #"{"NSFW": "NSFW", "TEXT": "café 👍", "WIDTH": null, "SAMPLE_ID": 19, "similarity": 0.5}"#,
                folder.appendingPathComponent("pictures/a.png").path + " "
                    + #"{"NSFW": null, "TEXT": "relative", "WIDTH": 2, "SAMPLE_ID": 21, "similarity": 0.9}"#,
            ], "\(stored.output)")

        // --fields keeps the columns named (a nested one left out is not reported).
        let chosen = try sandbox.run([
            "enqueue", "caption", "--manifest", path, "--image-column", "URL", "--fields", "SAMPLE_ID,TEXT", "--job",
            "chosen", "--model", "tiny", "--json",
        ])
        #expect(EnqueueCommandTests.json(chosen.output)["added"] as? Int == 3, "\(chosen.output)")
        #expect(EnqueueCommandTests.json(chosen.output)["unread_columns"] as? [String] == [])
        let kept = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"),
            [
                sandbox.databaseURL, "-tAc",
                "SELECT metadata::text FROM tasks WHERE job_id = (SELECT id FROM jobs WHERE name = 'chosen') "
                    + "ORDER BY (metadata->>'SAMPLE_ID')::int LIMIT 1",
            ])
        #expect(
            kept.output.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"TEXT": "a red square", "SAMPLE_ID": 17}"#
        )

        // The same file again adds nothing.
        let again = try sandbox.run([
            "enqueue", "caption", "--manifest", path, "--image-column", "URL", "--job", "p", "--model", "tiny",
            "--json",
        ])
        #expect(EnqueueCommandTests.json(again.output)["added"] as? Int == 0, "\(again.output)")
    }

    /// A file on an HTTP server is read by range requests; its relative image paths are taken from its URL's folder.
    @Test func aServedFileIsEnqueuedWithRelativeImagesFromItsURL() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let server = try NginxServer()
        let path = server.root.appendingPathComponent("meta/part.parquet").path
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Self.write(
            #"[{"url": "images/a.jpg", "caption": "one"}, {"url": "https://example.com/b.jpg", "caption": "two"}]"#,
            to: path)
        let result = try sandbox.run([
            "enqueue", "caption", "--manifest", server.url("/meta/part.parquet"), "--image-column", "url", "--job",
            "r", "--model", "tiny", "--json",
        ])
        #expect(result.status == 0 && EnqueueCommandTests.json(result.output)["added"] as? Int == 2, "\(result.output)")
        let stored = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"),
            [sandbox.databaseURL, "-tAc", "SELECT image_uri FROM tasks ORDER BY metadata->>'caption'"])
        #expect(
            stored.output.split(separator: "\n") == [
                Substring(server.url("/meta/images/a.jpg")), "https://example.com/b.jpg",
            ], "\(stored.output)")
    }

    /// A dataset's parts named by braces or a glob, locally or on a server, read in turn into one job; a refused
    /// row names its part, and a nested column all parts have is named once.
    @Test func aPatternOfPartsIsReadPartByPart() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let server = try NginxServer()
        let folder = server.root.appendingPathComponent("laion")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for part in 0..<3 {
            let rows = (0..<4).map { row in
                row == 3 && part == 1
                    ? #"{"URL": null, "n": \#(part * 10 + row), "tags": []}"#
                    : #"{"URL": "https://example.com/\#(part)/\#(row).jpg", "n": \#(part * 10 + row), "tags": ["a"]}"#
            }
            try Self.write(
                "[" + rows.joined(separator: ",") + "]",
                to: folder.appendingPathComponent("part-0000\(part).parquet").path)
        }
        let local = try sandbox.run([
            "enqueue", "caption", "--manifest", folder.path + "/part-{00000..00002}.parquet", "--image-column", "URL",
            "--job", "parts", "--model", "tiny", "--json",
        ])
        #expect(local.status == 3 && EnqueueCommandTests.json(local.output)["added"] as? Int == 11, "\(local.output)")
        let refusedPath = folder.appendingPathComponent("part-00001.parquet").path
        #expect(local.output.contains("\(refusedPath):4: no image (null)"), "\(local.output)")
        let refused = EnqueueCommandTests.json(local.output)["refused"] as? [[String: Any]]
        #expect(refused?.first?["file"] as? String == refusedPath)
        #expect(EnqueueCommandTests.json(local.output)["unread_columns"] as? [String] == ["tags (a list)"], "once")
        // A glob, into the same job: nothing new.
        let globbed = try sandbox.run([
            "enqueue", "caption", "--manifest", folder.path + "/part-*.parquet", "--image-column", "URL", "--job",
            "parts", "--model", "tiny", "--json",
        ])
        #expect(EnqueueCommandTests.json(globbed.output)["found"] as? Int == 11, "\(globbed.output)")
        #expect(EnqueueCommandTests.json(globbed.output)["added"] as? Int == 0)
        // Braces in a URL, into another job.
        let remote = try sandbox.run([
            "enqueue", "caption", "--manifest", server.url("/laion/part-{00000..00002}.parquet"), "--image-column",
            "URL", "--job", "remote", "--model", "tiny", "--json",
        ])
        #expect(EnqueueCommandTests.json(remote.output)["added"] as? Int == 11, "\(remote.output)")
        #expect(remote.output.contains(server.url("/laion/part-00001.parquet") + ":4: no image"))
        // A pattern that matches nothing, and a JSONL manifest by URL, are refused before anything is written.
        let none = try sandbox.run([
            "enqueue", "caption", "--manifest", folder.path + "/part-9*.parquet", "--job", "none", "--model", "tiny",
        ])
        #expect(none.status != 0 && none.output.contains("no manifest matches"), "\(none.output)")
        let jsonl = try sandbox.run([
            "enqueue", "caption", "--manifest", server.url("/m.jsonl"), "--job", "none", "--model", "tiny",
        ])
        #expect(jsonl.status != 0 && jsonl.output.contains("only when it is Parquet"), "\(jsonl.output)")
    }

    @Test func questionsComeFromTheirColumnAndImagesStoredInTheFileAreRefused() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let folder = ScratchFolders.url("enqueue-parquet-vqa")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("questions.parquet").path
        try Self.write(
            """
            [{"image": "\(Self.images)/rgb_64x64.png", "question": "What colour is it?"},
             {"image": "\(Self.images)/gray_64x48.png", "question": null}]
            """, to: path)
        let result = try sandbox.run([
            "enqueue", "vqa", "--manifest", path, "--job", "q", "--model", "tiny", "--json",
        ])
        #expect(result.status == 3 && EnqueueCommandTests.json(result.output)["added"] as? Int == 1, "\(result.output)")
        #expect(result.output.contains("\(path):2: no question"), "\(result.output)")
        let stored = try ProcessResult.run(
            URL(fileURLWithPath: "/usr/bin/psql"), [sandbox.databaseURL, "-tAc", "SELECT input_text FROM tasks"])
        #expect(stored.output.trimmingCharacters(in: .whitespacesAndNewlines) == "What colour is it?")
        // --text-column names another column; a file without it is refused before anything is written.
        let prompts = folder.appendingPathComponent("prompts.parquet").path
        try Self.write(#"[{"image": "\#(Self.images)/rgb_64x64.png", "prompt": "Is it red?"}]"#, to: prompts)
        let named = try sandbox.run([
            "enqueue", "vqa", "--manifest", prompts, "--text-column", "prompt", "--job", "t", "--model", "tiny",
            "--json",
        ])
        #expect(named.status == 0 && EnqueueCommandTests.json(named.output)["added"] as? Int == 1, "\(named.output)")
        let missing = try sandbox.run([
            "enqueue", "vqa", "--manifest", path, "--text-column", "prompt", "--job", "t2", "--model", "tiny",
        ])
        #expect(missing.status != 0 && missing.output.contains("no \"prompt\" column"), "\(missing.output)")
        let caption = try sandbox.run([
            "enqueue", "caption", "--manifest", prompts, "--text-column", "prompt", "--job", "t3", "--model", "tiny",
        ])
        #expect(caption.status != 0 && caption.output.contains("caption takes no text"), "\(caption.output)")

        // A Hugging Face datasets file keeps its images in the file, as a struct of bytes and path.
        let embedded = folder.appendingPathComponent("embedded.parquet").path
        try Self.write(#"[{"image": {"bytes": "AAEC", "path": "a.png"}, "text": "x"}]"#, to: embedded)
        let refused = try sandbox.run(["enqueue", "caption", "--manifest", embedded, "--job", "e", "--model", "tiny"])
        #expect(
            refused.status != 0 && refused.output.contains("the image column \"image\" is a struct"),
            "\(refused.output)")
        #expect(try sandbox.run(["show", "e"]).output.contains("no job e"))
    }
}
