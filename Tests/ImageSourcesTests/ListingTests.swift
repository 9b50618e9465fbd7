// URL lists and the manifest helpers.

import Foundation
import Testing

@testable import ImageSources

@Suite struct ListingTests {
    @Test func urlListsTakeURLsAndPathsAndRefuseUnknownSchemes() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "infmllm-urls-\(UInt64.random(in: 0...UInt64.max)).txt")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(
            """
            # a comment
            https://x.example/a.jpg

            /data/b.png
            relative.jpg
            s3://bucket/c.jpg
            tar:/s/0.tar!/d.jpg
            """.utf8
        ).write(to: file)
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.urls = file.path
        var report = ImageListing.Report()
        let listed = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        let folder = file.deletingLastPathComponent().standardizedFileURL.path
        #expect(
            listed.map(\.uri) == [
                "https://x.example/a.jpg", "/data/b.png", folder + "/relative.jpg", "tar:/s/0.tar!/d.jpg",
            ])
        #expect(report.refused.map(\.line) == [6])
        #expect(report.refused.first?.reason.contains("s3") == true)
    }

    @Test func relativeImagesResolveAgainstTheirBaseAndURIsStayAsGiven() {
        let resolve = { (image: String) in ImageListing.resolve(image, against: "/data/lists") }
        #expect(resolve("a.jpg") == "/data/lists/a.jpg")
        #expect(resolve("../photos/./b.png") == "/data/photos/b.png")
        #expect(resolve("/abs/c.jpg") == "/abs/c.jpg")
        #expect(resolve("tar:shards/0.tar!/x/../d.jpg") == "tar:/data/lists/shards/0.tar!/x/../d.jpg")
        #expect(resolve("zip:/abs/a.zip!/e.png") == "zip:/abs/a.zip!/e.png")
        for uri in ["https://x.example/f.jpg", "HTTP://x.example/g.jpg", "file:///h.jpg", "s3://bucket/i.jpg"] {
            #expect(resolve(uri) == uri)
        }
        // A colon alone does not make a scheme: a relative file name with one is a path.
        #expect(resolve("photo:1.jpg") == "/data/lists/photo:1.jpg")
    }

    @Test func csvHandlesQuotesCommasAndLineEnds() {
        #expect(CSV.rows("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n") == [["a", "b"], ["x, y", "say \"hi\""]])
        #expect(CSV.rows("image\nfoo.jpg") == [["image"], ["foo.jpg"]])
    }

    @Test func globsAreCaseInsensitive() {
        #expect(ImageListing.matches("*.jpg", "CAT.JPG"))
        #expect(!ImageListing.matches("*.jpg", "cat.png"))
    }
}
