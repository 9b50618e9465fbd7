// `export --format odvg` through the binary against the real PostgreSQL: a grounding job as the ODVG lines Grounding
// DINO trainers read, a line per image file with its regions, each phrase found in the caption where it says.

import Foundation
import TestSupport
import Testing

@Suite struct ExportODVGTests {
    @Test func eachImageFileIsALineOfItsRegions() throws {
        let sandbox = try Sandbox.make()
        defer { sandbox.remove() }
        let (folder, turned, plain) = try ExportLabelStudioTests.images(sandbox)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (image, expression) in [
            (turned, "the dog"), (turned, "the cat"), (plain, "the dog"), (plain, "nothing"),
            ("https://images.example/a.jpg", "the dog"),
        ] {
            let enqueued = try sandbox.run([
                "enqueue", "ground", image, "--expression", expression, "--job", "boxes", "--model", "tiny",
            ])
            #expect(enqueued.status == 0, "\(enqueued.output)")
        }
        try ExportLabelStudioTests.recordBoxes(sandbox, secondExpression: "the cat")
        let exported = try sandbox.run(["export", "boxes", "--format", "odvg", "--relative-to", folder.path])
        #expect(exported.status == 0, "\(exported.output)")
        #expect(exported.output.contains("wrote 2 images' regions; left out: 1 images that are not files under"))
        let lines = try ExportImageFolderTests.lines(exported.output)
        #expect(lines.map { $0["filename"] as? String } == ["plain.png", "sub/turned photo.jpg"])
        #expect(lines.map { $0["width"] as? Int } == [64, 640] && lines.map { $0["height"] as? Int } == [64, 480])
        // The plain image: its "nothing" found no box and is not in the caption.
        let plainGrounding = try #require(lines[0]["grounding"] as? [String: Any])
        #expect(plainGrounding["caption"] as? String == "the dog")
        let plainRegions = try #require(plainGrounding["regions"] as? [[String: Any]])
        #expect(plainRegions.count == 1 && plainRegions[0]["bbox"] as? [Double] == [16, 32, 32, 48])
        #expect(plainRegions[0]["phrase"] as? String == "the dog")
        #expect(plainRegions[0]["tokens_positive"] as? [[Int]] == [[0, 7]])
        // The turned photo, as stored (the trainers open images without applying Exif orientation).
        let turnedGrounding = try #require(lines[1]["grounding"] as? [String: Any])
        let caption = try #require(turnedGrounding["caption"] as? String)
        #expect(caption == "the dog. the cat")
        let turnedRegions = try #require(turnedGrounding["regions"] as? [[String: Any]])
        #expect(turnedRegions.map { $0["bbox"] as? [Double] } == [[0, 0, 20, 30], [320, 240, 640, 480]])
        for region in turnedRegions {
            let span = try #require((region["tokens_positive"] as? [[Int]])?.first)
            let scalars = Array(caption.unicodeScalars)[span[0]..<span[1]]
            #expect(String(String.UnicodeScalarView(scalars)) == region["phrase"] as? String)
        }
        // With --exif-orientation, the photo as viewers show it.
        let shown = try sandbox.run([
            "export", "boxes", "--format", "odvg", "--relative-to", folder.path, "--exif-orientation",
        ])
        let shownLines = try ExportImageFolderTests.lines(shown.output)
        #expect(shownLines.last?["width"] as? Int == 480 && shownLines.last?["height"] as? Int == 640)
        let shownRegions = (shownLines.last?["grounding"] as? [String: Any])?["regions"] as? [[String: Any]]
        #expect(shownRegions?.map { $0["bbox"] as? [Double] } == [[450, 0, 480, 20], [0, 320, 240, 640]])
        // Without --relative-to, files are named by their paths as stored.
        let absolute = try ExportImageFolderTests.lines(
            try sandbox.run(["export", "boxes", "--format", "odvg"]).output)
        #expect(absolute.map { $0["filename"] as? String } == [plain, turned])

        // Only grounding jobs have regions.
        let caption2 = try sandbox.run(["enqueue", "caption", plain, "--job", "captions", "--model", "tiny"])
        #expect(caption2.status == 0, "\(caption2.output)")
        let refused = try sandbox.run(["export", "captions", "--format", "odvg"])
        #expect(refused.status != 0 && refused.output.contains("is a caption job, not a grounding one"))
    }
}
