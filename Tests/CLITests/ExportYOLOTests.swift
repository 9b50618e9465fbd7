// `export --format yolo`: a grounding job's boxes as YOLO label files through the binary against the real PostgreSQL:
// a file per image under --output mirroring --relative-to, a line per box in fractions of the shown image, classes
// in classes.txt, existing files kept unless --overwrite.

import Foundation
import TestSupport
import Testing

@Suite struct ExportYOLOTests {
    @Test func boxesBecomeLabelFilesOfTheShownImage() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let (folder, turned, plain) = try ExportLabelStudioTests.images(sandbox)
        defer { try? FileManager.default.removeItem(at: folder) }
        let classesImage = folder.appendingPathComponent("classes.png").path
        try FileManager.default.copyItem(atPath: plain, toPath: classesImage)
        for (image, expression) in [
            (turned, "the dog"), (turned, "the cat"), (plain, "the dog"), (plain, "nothing"), (classesImage, "the dog"),
        ] {
            let enqueued = try sandbox.run([
                "enqueue", "ground", image, "--expression", expression, "--job", "labels", "--model", "tiny",
            ])
            #expect(enqueued.status == 0, "\(enqueued.output)")
        }
        // The turned photo's boxes, one for "the dog" on the others, "nothing" without one.
        try ExportLabelStudioTests.recordBoxes(sandbox, secondExpression: "the cat")
        let labels = EnqueueStreamingTests.file("labels")
        defer { try? FileManager.default.removeItem(at: labels) }
        let exported = try sandbox.run([
            "export", "labels", "--format", "yolo", "--categories", "expression", "--relative-to", folder.path,
            "--output", labels.path,
        ])
        #expect(exported.status == 0, "\(exported.output)")
        #expect(exported.output.contains("wrote 2 label files") && exported.output.contains("or is reserved"))
        func read(_ name: String) throws -> [String] {
            try String(contentsOf: labels.appendingPathComponent(name), encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        // Classes in the order met, by image path: the plain image's ("the dog", "nothing"), then the turned one's.
        #expect(try read("classes.txt") == ["the dog", "nothing", "the cat", ""])
        // Shown 480 x 640 (a quarter turn clockwise): the stored top-left box lies at the top right.
        #expect(
            try read("sub/turned photo.txt") == [
                "0 0.968750 0.015625 0.062500 0.031250", "2 0.250000 0.750000 0.500000 0.500000", "",
            ])
        #expect(try read("plain.txt") == ["0 0.375000 0.625000 0.250000 0.250000", ""])
        // A label file that exists stays unless --overwrite.
        try Data("hand-corrected\n".utf8).write(to: labels.appendingPathComponent("plain.txt"))
        let again = try sandbox.run([
            "export", "labels", "--format", "yolo", "--relative-to", folder.path, "--output", labels.path,
        ])
        #expect(again.output.contains("2 whose file exists"), "\(again.output)")
        #expect(try read("plain.txt") == ["hand-corrected", ""])
        // The kept files' classes keep their numbers; the single class comes after them.
        #expect(try read("classes.txt") == ["the dog", "nothing", "the cat", "referred object", ""])
        // --overwrite replaces label files, not the numbering; a classes.txt written on Windows (CRLF) with a blank
        // line keeps every class's number.
        try Data("the dog\r\n\r\nreferred object\r\n".utf8).write(to: labels.appendingPathComponent("classes.txt"))
        let fresh = try sandbox.run([
            "export", "labels", "--format", "yolo", "--relative-to", folder.path, "--output", labels.path,
            "--overwrite",
        ])
        #expect(fresh.output.contains("wrote 2 label files"), "\(fresh.output)")
        #expect(try read("classes.txt") == ["the dog", "", "referred object", ""])
        #expect(try read("plain.txt") == ["2 0.375000 0.625000 0.250000 0.250000", ""])
        // Tasks that are not done are counted: their boxes are missing from the label files.
        _ = try EnqueueStreamingTests.sql(sandbox, "UPDATE tasks SET status = 'failed' WHERE image_uri LIKE '%plain%'")
        let partial = try sandbox.run([
            "export", "labels", "--format", "yolo", "--relative-to", folder.path, "--output", labels.path,
        ])
        #expect(partial.output.contains("2 task(s) are not done"), "\(partial.output)")
        let captions = try sandbox.run(["enqueue", "caption", plain, "--job", "captions", "--model", "tiny"])
        #expect(captions.status == 0)
        let refused = try sandbox.run(["export", "captions", "--format", "yolo", "--output", labels.path])
        #expect(refused.status != 0 && refused.output.contains("not a grounding one"), "\(refused.output)")
    }
}
