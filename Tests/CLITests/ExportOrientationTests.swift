// `export --exif-orientation`: boxes, width and height as viewers show an image with an Exif orientation tag, through
// the binary against the real PostgreSQL; by default they stay as stored (the pixels the model saw).

import Foundation
import TestSupport
import Testing

@Suite struct ExportOrientationTests {
    @Test func boxesTurnWithTheImageWhenAsked() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let image = EnqueueCommandTests.images + "/exif_6_7x4.jpg"
        let enqueued = try sandbox.run([
            "enqueue", "ground", image, "--expression", "the dog", "--job", "turned", "--model", "tiny",
        ])
        #expect(enqueued.status == 0, "\(enqueued.output)")
        // A 640 x 480 photo stored on its side (tag 6: viewers turn it a quarter clockwise), a box in its top-left.
        _ = try EnqueueStreamingTests.sql(
            sandbox,
            """
            UPDATE tasks SET status = 'done', image_width = 640, image_height = 480, image_orientation = 6;
            INSERT INTO results (task_id, job_id, output_text, prompt_token_count, output_token_count, model_name,
                                 prompt, decoding, device, worker)
            SELECT id, job_id, '<box>(0,0),(31,20)</box>', 5, 2, 'tiny', 'p', '{}', 'cpu', 'w' FROM tasks;
            INSERT INTO result_boxes (task_id, ordinal, x1_norm, y1_norm, x2_norm, y2_norm, x1, y1, x2, y2)
            SELECT id, 0, 0, 0, 0.03125, 0.0625, 0, 0, 20, 30 FROM tasks;
            """)
        func line(_ arguments: [String]) throws -> [String: Any] {
            let result = try sandbox.run(["export", "turned"] + arguments)
            #expect(result.status == 0, "\(result.output)")
            return EnqueueCommandTests.json(result.output)
        }
        let stored = try line([])
        #expect(stored["orientation"] as? Int == 6 && stored["width"] as? Int == 640 && stored["height"] as? Int == 480)
        #expect(stored["boxes"] as? [[Double]] == [[0, 0, 20, 30, 0, 0, 0.03125, 0.0625]])
        let shown = try line(["--exif-orientation"])
        #expect(shown["width"] as? Int == 480 && shown["height"] as? Int == 640, "\(shown)")
        #expect(shown["orientation"] as? Int == 1, "the shown image is upright")
        // A quarter turn clockwise: the top-left corner goes to the top-right.
        #expect(shown["boxes"] as? [[Double]] == [[450, 0, 480, 20, 0.9375, 0, 1, 0.03125]], "\(shown)")
        let coco = try sandbox.run(["export", "turned", "--format", "coco", "--exif-orientation"])
        let document = try JSONSerialization.jsonObject(with: Data(coco.output.utf8)) as? [String: Any]
        let entry = (document?["images"] as? [[String: Any]])?.first
        #expect(entry?["width"] as? Int == 480 && entry?["height"] as? Int == 640, "\(coco.output)")
        #expect((document?["annotations"] as? [[String: Any]])?.first?["bbox"] as? [Double] == [450, 0, 30, 20])

        // The boxes view carries it for SQL.
        #expect(
            try EnqueueStreamingTests.sql(sandbox, "SELECT image_orientation FROM boxes WHERE job = 'turned'") == "6")

        // A task read before orientations were recorded stays as stored, and the export says so.
        _ = try EnqueueStreamingTests.sql(sandbox, "UPDATE tasks SET image_orientation = NULL")
        let older = try sandbox.run(["export", "turned", "--exif-orientation"])
        #expect(older.output.contains("1 task(s) were read before orientations were recorded"), "\(older.output)")
        #expect(EnqueueCommandTests.json(older.output)["width"] as? Int == 640)
        let txt = try sandbox.run(["export", "turned", "--format", "txt", "--output", "/tmp", "--exif-orientation"])
        #expect(txt.status != 0 && txt.output.contains("formats with boxes"))
    }
}
