// `export --format label-studio`: results as Label Studio tasks with predictions, through the binary against the real
// PostgreSQL: boxes in percent of the image as browsers show it, one task per image for grounding and captions and
// per question for VQA, image paths under a prefix, and the labeling config the tasks fit.

import Foundation
import TestSupport
import Testing

@Suite struct ExportLabelStudioTests {
    /// Images in a folder of their own, one with a space in its name and one stored on its side (Exif tag 6).
    static func images(_ sandbox: Sandbox) throws -> (folder: URL, turned: String, plain: String) {
        let folder = EnqueueStreamingTests.file("label-studio")
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let turned = folder.appendingPathComponent("sub/turned photo.jpg").path
        let plain = folder.appendingPathComponent("plain.png").path
        try FileManager.default.copyItem(atPath: EnqueueCommandTests.images + "/exif_6_7x4.jpg", toPath: turned)
        try FileManager.default.copyItem(atPath: EnqueueCommandTests.images + "/rgb_64x64.png", toPath: plain)
        return (folder, turned, plain)
    }

    /// Enqueues a grounding job `job` from manifest `lines` (objects with an image, an expression, other fields).
    static func enqueueGrounding(_ sandbox: Sandbox, job: String, _ lines: [[String: Any]]) throws {
        let manifest = EnqueueStreamingTests.file("grounding.jsonl")
        defer { try? FileManager.default.removeItem(at: manifest) }
        try Data(
            lines.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
                .joined(separator: "\n").utf8
        ).write(to: manifest)
        let enqueued = try sandbox.run([
            "enqueue", "ground", "--manifest", manifest.path, "--job", job, "--model", "tiny",
        ])
        #expect(enqueued.status == 0, "\(enqueued.output)")
    }

    /// Marks every task done with a result: the turned photo 640 x 480 as stored (tag 6), with a box for "the dog"
    /// in its top-left corner and one for `secondExpression` in its bottom-right quarter; every other image 64 x 64,
    /// upright, with a box for "the dog" and none for other expressions. Outputs for "the dog" have a confidence of
    /// exp(-0.1), the others exp(-0.5) (two tokens each).
    static func recordBoxes(_ sandbox: Sandbox, secondExpression: String) throws {
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE tasks SET status = 'done', image_width = 640, image_height = 480, image_orientation = 6
            WHERE image_uri LIKE '%turned%';
            UPDATE tasks SET status = 'done', image_width = 64, image_height = 64, image_orientation = 1
            WHERE image_uri NOT LIKE '%turned%';
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker, output_logprob)
            SELECT id, job_id, 'boxes', 5, 2, 'tiny', 'p', '{}', 'cpu', 'w',
                   CASE WHEN input_text = 'the dog' THEN -0.2 ELSE -1.0 END FROM tasks;
            INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
            SELECT id, 0, 0, 0, 0.03125, 0.0625, 0, 0, 20, 30 FROM tasks
            WHERE image_uri LIKE '%turned%' AND input_text = 'the dog';
            INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
            SELECT id, 0, 0.5, 0.5, 1, 1, 320, 240, 640, 480 FROM tasks
            WHERE image_uri LIKE '%turned%' AND input_text = '\(secondExpression.replacingOccurrences(of: "'", with: "''"))';
            INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
            SELECT id, 0, 0.25, 0.5, 0.5, 0.75, 16, 32, 32, 48 FROM tasks
            WHERE image_uri NOT LIKE '%turned%' AND input_text = 'the dog';
            """)
    }

    static func tasks(_ sandbox: Sandbox, _ arguments: [String]) throws -> [[String: Any]] {
        let result = try sandbox.run(["export"] + arguments + ["--format", "label-studio"])
        #expect(result.status == 0, "\(result.output)")
        let start = result.output.firstIndex(of: "[") ?? result.output.startIndex
        let document = try JSONSerialization.jsonObject(with: Data(result.output[start...].utf8))
        return document as? [[String: Any]] ?? []
    }

    static func results(_ task: [String: Any]) -> [[String: Any]] {
        ((task["predictions"] as? [[String: Any]])?.first?["result"] as? [[String: Any]]) ?? []
    }

    @Test func groundingBoxesAreRectanglesOfTheShownImageOneTaskPerImage() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let (folder, turned, plain) = try Self.images(sandbox)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.enqueueGrounding(
            sandbox, job: "review",
            [
                ["image": turned, "expression": "the dog", "source": "a"],
                ["image": turned, "expression": "the cat & co"], ["image": plain, "expression": "the dog"],
                ["image": plain, "expression": "nothing"],
            ])
        // The turned photo: 640 x 480 as stored, viewers turn it a quarter clockwise. Its boxes: one per expression.
        // The plain image: one box for "the dog"; "nothing" found none; a failed task is left out.
        try Self.recordBoxes(sandbox, secondExpression: "the cat & co")
        let config = EnqueueStreamingTests.file("config.xml")
        defer { try? FileManager.default.removeItem(at: config) }
        let tasks = try Self.tasks(
            sandbox,
            [
                "review", "--categories", "expression", "--relative-to", folder.path, "--image-prefix",
                "/data/local-files/?d=", "--label-config", config.path,
            ])
        #expect(tasks.count == 2, "one task per image: \(tasks)")
        let byImage = Dictionary(
            uniqueKeysWithValues: tasks.map { (($0["data"] as? [String: Any])?["image_uri"] as? String ?? "", $0) })
        let turnedTask = try #require(byImage[turned])
        let data = try #require(turnedTask["data"] as? [String: Any])
        #expect(data["image"] as? String == "/data/local-files/?d=sub/turned%20photo.jpg")
        #expect((data["task_ids"] as? [Int])?.count == 2)
        #expect((data["metadata"] as? [String: Any])?["source"] as? String == "a", "the first task's fields")
        let rectangles = Self.results(turnedTask)
        #expect(rectangles.count == 2)
        let dog = try #require(
            rectangles.first { ($0["value"] as? [String: Any])?["rectanglelabels"] as? [String] == ["the dog"] })
        // Shown 480 x 640: the stored top-left box [0, 0, 20, 30] is at the top right, [450, 0, 480, 20].
        #expect(dog["original_width"] as? Int == 480 && dog["original_height"] as? Int == 640)
        #expect(dog["type"] as? String == "rectanglelabels" && dog["from_name"] as? String == "label")
        #expect(dog["to_name"] as? String == "image")
        let value = try #require(dog["value"] as? [String: Any])
        #expect(value["x"] as? Double == 93.75 && value["y"] as? Double == 0)
        #expect(value["width"] as? Double == 6.25 && value["height"] as? Double == 3.125)
        // Each rectangle has its output's confidence; the prediction, its least sure output's.
        #expect(abs((dog["score"] as? Double ?? 0) - exp(-0.1)) < 1e-12)
        let prediction = (turnedTask["predictions"] as? [[String: Any]])?.first
        #expect(abs((prediction?["score"] as? Double ?? 0) - exp(-0.5)) < 1e-12)
        let plainTask = try #require(byImage[plain])
        #expect((plainTask["data"] as? [String: Any])?["image"] as? String == "/data/local-files/?d=plain.png")
        let plainBoxes = Self.results(plainTask)
        #expect(plainBoxes.count == 1, "\"nothing\" has no box")
        let plainValue = try #require(plainBoxes.first?["value"] as? [String: Any])
        #expect(plainValue["x"] as? Double == 25 && plainValue["y"] as? Double == 50)
        #expect(plainValue["width"] as? Double == 25 && plainValue["height"] as? Double == 25)
        #expect((plainTask["predictions"] as? [[String: Any]])?.first?["model_version"] as? String == "tiny")

        let xml = try String(contentsOf: config, encoding: .utf8)
        #expect(xml.contains("<Image name=\"image\" value=\"$image\"/>"))
        #expect(xml.contains("<RectangleLabels name=\"label\" toName=\"image\">"))
        for label in ["the dog", "the cat &amp; co", "nothing"] { #expect(xml.contains("<Label value=\"\(label)\"/>")) }

        // Without a prefix, the image is its path as stored; with the single category, one label.
        let plainPaths = try Self.tasks(sandbox, ["review"])
        #expect(Set(plainPaths.compactMap { ($0["data"] as? [String: Any])?["image"] as? String }) == [turned, plain])
        #expect(
            Set(
                plainPaths.flatMap(Self.results).compactMap {
                    ($0["value"] as? [String: Any])?["rectanglelabels"] as? [String]
                })
                == [["referred object"]])
        // A failed task is not a prediction.
        _ = try EnqueueStreamingTests.sql(sandbox, "UPDATE tasks SET status = 'failed' WHERE image_uri LIKE '%plain%'")
        #expect(try Self.tasks(sandbox, ["review"]).count == 1)

        let refused = try sandbox.run(["export", "review", "--format", "label-studio", "--image-prefix", "/x?d="])
        #expect(refused.status != 0 && refused.output.contains("--image-prefix needs --relative-to"))
    }

    /// `--min-confidence` leaves out the done tasks below it (here every expression but "the dog"), as if not done:
    /// an image keeps its other tasks, and stderr counts what went.
    @Test func aMinimumConfidenceLeavesOutTheDoubtfulTasks() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let (folder, turned, plain) = try Self.images(sandbox)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (image, expression) in [(turned, "the dog"), (turned, "the cat"), (plain, "the dog"), (plain, "nothing")] {
            let enqueued = try sandbox.run([
                "enqueue", "ground", image, "--expression", expression, "--job", "doubt", "--model", "tiny",
            ])
            #expect(enqueued.status == 0, "\(enqueued.output)")
        }
        try Self.recordBoxes(sandbox, secondExpression: "the cat")
        // One result without a log-probability (an older worker's): it has no confidence, and goes too.
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE results SET output_logprob = NULL
            WHERE task_id = (SELECT id FROM tasks WHERE input_text = 'nothing')
            """)
        let file = EnqueueStreamingTests.file("doubt.json")
        defer { try? FileManager.default.removeItem(at: file) }
        let exported = try sandbox.run([
            "export", "doubt", "--format", "label-studio", "--min-confidence", "0.7", "--output", file.path,
        ])
        #expect(
            exported.status == 0
                && exported.output.contains(
                    "1 done task(s) below --min-confidence 0.7 left out, and 1 without a confidence"),
            "\(exported.output)")
        let tasks = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [[String: Any]] ?? []
        #expect(tasks.count == 2, "each image keeps its sure task")
        for task in tasks {
            let labels = Self.results(task).compactMap {
                ($0["value"] as? [String: Any])?["rectanglelabels"] as? [String]
            }
            #expect(labels == [["referred object"]], "only the dog's box")
            #expect(
                abs(((task["predictions"] as? [[String: Any]])?.first?["score"] as? Double ?? 0) - exp(-0.1)) < 1e-12)
        }
        // CSV keeps tasks in other states; a confidence above every output leaves none done.
        let csv = try sandbox.run([
            "export", "doubt", "--format", "csv", "--min-confidence", "1", "--output", file.path,
        ])
        #expect(
            csv.output.contains("3 done task(s) below --min-confidence 1.0 left out, and 1 without"), "\(csv.output)")
        #expect(try String(contentsOf: file, encoding: .utf8).split(separator: "\n").count == 1, "the header alone")
        let refused = try sandbox.run(["export", "doubt", "--format", "csv", "--min-confidence", "1.5"])
        #expect(refused.status != 0 && refused.output.contains("--min-confidence must be between 0 and 1"))
        // A database short of the build's migrations is named as such, not as a missing column.
        _ = try EnqueueStreamingTests.sql(
            sandbox, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
        let old = try sandbox.run(["export", "doubt", "--format", "csv"])
        #expect(old.status != 0 && old.output.contains("run `infmllm migrate`"), "\(old.output)")
        for command in [
            ["show", "doubt"], ["jobs"],
            [
                "enqueue", "ground", folder.path + "/plain.png", "--expression", "x", "--job", "doubt", "--model",
                "tiny",
            ],
        ] {
            let refusal = try sandbox.run(command)
            #expect(refusal.status != 0 && refusal.output.contains("run `infmllm migrate`"), "\(command)")
        }
    }

    @Test func captionsAreTextOneTaskPerImageAndAnswersOneTaskPerQuestion() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let (folder, turned, plain) = try Self.images(sandbox)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (kind, job, text) in [("caption", "captions", []), ("vqa", "answers", ["--question", "What is it?"])] {
            let enqueued = try sandbox.run(
                ["enqueue", kind, turned, plain, "--job", job, "--model", "tiny"] + text)
            #expect(enqueued.status == 0, "\(enqueued.output)")
        }
        let questions = try sandbox.run([
            "enqueue", "vqa", plain, "--question", "What colour?", "--job", "answers", "--model", "tiny",
        ])
        #expect(questions.status == 0, "\(questions.output)")
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE tasks SET status = 'done', image_width = 64, image_height = 64, image_orientation = 1;
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker)
            SELECT id, job_id, 'output of ' || id, 5, 2, 'tiny', 'p', '{}', 'cpu', 'w' FROM tasks;
            """)
        let captions = try Self.tasks(sandbox, ["captions"])
        #expect(captions.count == 2)
        for task in captions {
            let result = try #require(Self.results(task).first)
            #expect(result["type"] as? String == "textarea" && result["from_name"] as? String == "caption")
            #expect(((result["value"] as? [String: Any])?["text"] as? [String])?.first?.hasPrefix("output of ") == true)
        }
        let answers = try Self.tasks(sandbox, ["answers"])
        #expect(answers.count == 3, "one task per question")
        #expect(
            Set(answers.compactMap { ($0["data"] as? [String: Any])?["question"] as? String })
                == ["What is it?", "What colour?"])
        #expect(answers.allSatisfy { Self.results($0).first?["from_name"] as? String == "answer" })
    }
}
