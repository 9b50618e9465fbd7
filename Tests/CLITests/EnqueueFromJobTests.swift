// `enqueue --from-job`: an earlier job's images, texts and fields as the source of a new job, through the binary
// against the real PostgreSQL and RabbitMQ.

import Foundation
import TestSupport
import Testing

@Suite struct EnqueueFromJobTests {
    static let images = EnqueueCommandTests.images

    @Test func anEarlierJobsImagesTextsAndFieldsMakeANewJob() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove(models: ["tiny", "other"]) }
        let manifest = EnqueueStreamingTests.file("first.jsonl")
        defer { try? FileManager.default.removeItem(at: manifest) }
        let (a, b) = (Self.images + "/rgb_64x64.png", Self.images + "/gray_64x48.png")
        try Data(
            [
                #"{"image": "\#(a)", "question": "What is it?", "id": 1}"#,
                #"{"image": "\#(a)", "question": "Which colour?", "id": 2}"#,
                #"{"image": "\#(b)", "question": "What is it?", "id": 3}"#,
            ].joined(separator: "\n").utf8
        ).write(to: manifest)
        #expect(
            try sandbox.run(["enqueue", "vqa", "--manifest", manifest.path, "--job", "first", "--model", "tiny"]).status
                == 0)
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE tasks SET status = CASE metadata->>'id' WHEN '1' THEN 'done' WHEN '2' THEN 'failed' ELSE 'cancelled' END
            """)
        let inputs = { (job: String) in
            try EnqueueStreamingTests.sql(
                sandbox,
                """
                SELECT string_agg(replace(t.image_uri, '\(Self.images)/', '') || '|' || t.input_text || '|'
                                  || coalesce(t.metadata->>'id', '-'), ';' ORDER BY t.id)
                FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = '\(job)'
                """)
        }

        // Export takes the tasks in a state when asked: the failures, say.
        let failures = try sandbox.run(["export", "first", "--status", "failed", "--status", "cancelled"])
        let states = failures.output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["status"] as? String
        }
        #expect(states == ["failed", "cancelled"], "\(failures.output)")
        let coco = try sandbox.run(["export", "first", "--format", "coco", "--status", "failed"])
        #expect(coco.status != 0 && coco.output.contains("--status is for"), "\(coco.output)")

        // Every task, with its question and fields, for another model.
        let all = try sandbox.run([
            "enqueue", "vqa", "--from-job", "first", "--job", "second", "--model", "other", "--json",
        ])
        #expect(EnqueueCommandTests.json(all.output)["added"] as? Int == 3, "\(all.output)")
        #expect(
            try inputs("second")
                == "rgb_64x64.png|What is it?|1;rgb_64x64.png|Which colour?|2;gray_64x48.png|What is it?|3")
        // The failed ones, asked another question.
        let failed = try sandbox.run([
            "enqueue", "vqa", "--from-job", "first", "--from-status", "failed", "--question", "Why?", "--job", "third",
            "--model", "tiny",
        ])
        #expect(failed.status == 0, "\(failed.output)")
        #expect(try inputs("third") == "rgb_64x64.png|Why?|2")
        // Captions of the same images: each image once (the first task's fields), beside an image given as well.
        let captions = try sandbox.run([
            "enqueue", "caption", Self.images + "/rgb_64x64.jpg", "--from-job", "first", "--job", "fourth", "--model",
            "tiny", "--json",
        ])
        let outcome = EnqueueCommandTests.json(captions.output)
        #expect(outcome["found"] as? Int == 4 && outcome["added"] as? Int == 3, "\(captions.output)")
        #expect(try inputs("fourth") == "rgb_64x64.jpg||-;rgb_64x64.png||1;gray_64x48.png||3")

        let noExpression = try sandbox.run(["enqueue", "ground", "--from-job", "fourth", "--model", "tiny"])
        #expect(noExpression.status != 0 && noExpression.output.contains("have no expression: give --expression"))
        let missing = try sandbox.run(["enqueue", "caption", "--from-job", "nope", "--model", "tiny"])
        #expect(missing.status != 0 && missing.output.contains("no job nope to enqueue from"), "\(missing.output)")
        // A message per image and job on the tiny model's queue: first's two images, third's one, fourth's three.
        #expect(try sandbox.queueDepth() == 6)
    }
}
