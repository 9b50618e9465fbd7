// `export --format imagefolder` through the binary against the real PostgreSQL: the metadata.jsonl Hugging Face
// datasets reads beside a folder of images, a line per image file under --relative-to with its results by kind.

import Foundation
import TestSupport
import Testing

@Suite struct ExportImageFolderTests {
    static func lines(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// Marks the tasks `condition` selects done, each with a result whose output is the SQL expression `output`.
    static func finish(_ sandbox: Sandbox, _ condition: String, output: String) throws {
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE tasks SET status = 'done' WHERE \(condition);
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker)
            SELECT id, job_id, \(output), 5, 3, 'tiny', 'p', '{}', 'cpu', 'w' FROM tasks WHERE \(condition);
            """)
    }

    @Test func everyImageUnderTheFolderHasALineOfItsResults() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let (folder, turned, plain) = try ExportLabelStudioTests.images(sandbox)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (image, expression) in [(turned, "the dog"), (turned, "the cat"), (plain, "the dog"), (plain, "nothing")] {
            let enqueued = try sandbox.run([
                "enqueue", "ground", image, "--expression", expression, "--job", "boxes", "--model", "tiny",
            ])
            #expect(enqueued.status == 0, "\(enqueued.output)")
        }
        let url = try sandbox.run([
            "enqueue", "ground", "https://images.example/a.jpg", "--expression", "the dog", "--job", "boxes",
            "--model", "tiny",
        ])
        #expect(url.status == 0, "\(url.output)")
        try ExportLabelStudioTests.recordBoxes(sandbox, secondExpression: "the cat")
        let metadata = folder.appendingPathComponent("metadata.jsonl")
        let exported = try sandbox.run([
            "export", "boxes", "--format", "imagefolder", "--relative-to", folder.path, "--output", metadata.path,
        ])
        #expect(exported.status == 0, "\(exported.output)")
        #expect(exported.output.contains("wrote 2 images' metadata; left out: 1 images that are not files"))
        let lines = try Self.lines(try String(contentsOf: metadata, encoding: .utf8))
        // By path bytes: plain.png, then sub/turned photo.jpg; boxes as [x, y, width, height] in pixels of the image
        // as datasets loads it (Exif orientation applied: the turned photo stored 640 x 480 shows 480 x 640).
        #expect(lines.map { $0["file_name"] as? String } == ["plain.png", "sub/turned photo.jpg"])
        let plainObjects = try #require(lines[0]["objects"] as? [String: Any])
        #expect(plainObjects["bbox"] as? [[Double]] == [[16, 32, 16, 16]])
        #expect(plainObjects["expression"] as? [String] == ["the dog"])
        let turnedObjects = try #require(lines[1]["objects"] as? [String: Any])
        #expect(turnedObjects["bbox"] as? [[Double]] == [[450, 0, 30, 20], [0, 320, 240, 320]])
        #expect(turnedObjects["expression"] as? [String] == ["the dog", "the cat"])

        // A caption job's line holds its caption as text (diffusers' default caption column).
        let caption = try sandbox.run(["enqueue", "caption", plain, "--job", "captions", "--model", "tiny"])
        #expect(caption.status == 0, "\(caption.output)")
        try Self.finish(
            sandbox, "job_id = (SELECT id FROM jobs WHERE name = 'captions')", output: "'a small red square'")
        let captions = try sandbox.run(["export", "captions", "--format", "imagefolder", "--relative-to", folder.path])
        #expect(captions.status == 0, "\(captions.output)")
        let captionLines = try Self.lines(captions.output)
        #expect(captionLines.count == 1 && captionLines[0]["text"] as? String == "a small red square")
        #expect(captionLines[0]["file_name"] as? String == "plain.png")

        // A VQA job's line holds its questions and answers, in task order.
        for question in ["what colour is it?", "how many squares?"] {
            let asked = try sandbox.run([
                "enqueue", "vqa", plain, "--question", question, "--job", "questions", "--model", "tiny",
            ])
            #expect(asked.status == 0, "\(asked.output)")
        }
        try Self.finish(
            sandbox, "job_id = (SELECT id FROM jobs WHERE name = 'questions')",
            output: "CASE WHEN input_text LIKE 'what%' THEN 'red' ELSE 'one' END")
        let vqa = try sandbox.run(["export", "questions", "--format", "imagefolder", "--relative-to", folder.path])
        let vqaLines = try Self.lines(vqa.output)
        #expect(vqaLines.count == 1, "\(vqa.output)")
        #expect(vqaLines.first?["questions"] as? [String] == ["what colour is it?", "how many squares?"])
        #expect(vqaLines.first?["answers"] as? [String] == ["red", "one"])

        // The same file under another URI of the job (its file:// form) gets no second line.
        let again = try sandbox.run(["enqueue", "caption", "file://" + plain, "--job", "captions", "--model", "tiny"])
        #expect(again.status == 0, "\(again.output)")
        try Self.finish(sandbox, "image_uri LIKE 'file://%'", output: "'the same square'")
        let twice = try sandbox.run(["export", "captions", "--format", "imagefolder", "--relative-to", folder.path])
        #expect(try Self.lines(twice.output).count == 1, "\(twice.output)")
        #expect(twice.output.contains("1 images whose file another URI of the job named already"), "\(twice.output)")

        let refused = try sandbox.run(["export", "captions", "--format", "imagefolder"])
        #expect(refused.status != 0 && refused.output.contains("--format imagefolder needs --relative-to DIR"))
    }
}
