// URL lists and the manifest helpers.

import Foundation
import Testing

@testable import ImageSources

@Suite struct ListingTests {
    @Test func urlListsTakeURLsAndPathsAndListTheRest() throws {
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
        #expect(listed.map(\.uri) == ["https://x.example/a.jpg", "/data/b.png", "tar:/s/0.tar!/d.jpg"])
        #expect(report.refused.map(\.line) == [5, 6])
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
