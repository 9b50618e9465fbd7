// URL lists and the manifest helpers.

import Foundation
import Testing

@testable import ImageSources

@Suite struct ListingTests {
    /// A new empty folder for a test's files; the test removes it.
    static func folder(_ label: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "infmllm-\(label)-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

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
            gs://bucket/c.jpg
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
        #expect(report.refused.first?.reason.contains("gs") == true)
    }

    /// Lists and manifests written on Windows (CRLF) or old Macs (CR) have as many lines as on Linux.
    @Test func listsAndManifestsWithCRLFOrCRLineEndsHaveEveryLine() throws {
        let folder = try Self.folder("lines")
        defer { try? FileManager.default.removeItem(at: folder) }
        let list = folder.appendingPathComponent("urls.txt"), manifest = folder.appendingPathComponent("m.jsonl")
        try Data(
            "https://x.example/a.jpg\r\n# a comment\r\n\r\nhttps://x.example/b.jpg\rhttps://x.example/c.jpg\r\n".utf8
        )
        .write(to: list)
        try Data(
            (#"{"image": "/d/a.jpg", "question": "What?"}"# + "\r\n" + #"{"image": "/d/b.jpg", "question": "Who?"}"#
                + "\r\n\r\nnot json\r\n").utf8
        ).write(to: manifest)
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.urls = list.path
        var report = ImageListing.Report()
        let urls = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(urls.map(\.uri) == ["https://x.example/a.jpg", "https://x.example/b.jpg", "https://x.example/c.jpg"])
        #expect(report.refused.isEmpty)
        request = ImageListing.Request(takesText: true, textName: "question", sharedText: "")
        request.manifest = manifest.path
        report = ImageListing.Report()
        let tasks = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(tasks.map(\.uri) == ["/d/a.jpg", "/d/b.jpg"] && tasks.map(\.text) == ["What?", "Who?"])
        #expect(report.refused.map(\.line) == [4], "the bad line keeps its number")
    }

    /// A manifest line's other fields (JSONL keys, CSV columns) are the task's metadata, a JSON object with sorted
    /// keys; the image and the text are not among them; too much, or a NUL, refuses the line.
    /// `--image-column` names the field or column of JSONL and CSV manifests too; the rest stay fields.
    @Test func theImageColumnMayHaveAnotherName() throws {
        let folder = try Self.folder("image-column")
        defer { try? FileManager.default.removeItem(at: folder) }
        let jsonl = folder.appendingPathComponent("m.jsonl"), csv = folder.appendingPathComponent("m.csv")
        try Data(#"{"url": "https://example.com/a.jpg", "image": "not this", "id": 1}"#.utf8).write(to: jsonl)
        try Data("id,url\n2,pictures/b.png\n".utf8).write(to: csv)
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.imageColumn = "url"
        var report = ImageListing.Report()
        request.manifest = jsonl.path
        let fromJSONL = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(fromJSONL.map(\.uri) == ["https://example.com/a.jpg"])
        #expect(fromJSONL.map(\.metadata) == [#"{"id":1,"image":"not this"}"#])
        request.manifest = csv.path
        let fromCSV = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(fromCSV.map(\.uri) == [folder.appendingPathComponent("pictures/b.png").path])
        #expect(fromCSV.map(\.metadata) == [#"{"id":"2"}"#] && report.refusedCount == 0)
        // A CSV without the column is refused before anything is listed; a JSONL line without it is refused alone.
        request.imageColumn = "URL"
        #expect { try ImageListing.check(request, reader: ImageReader()) } throws: {
            "\($0)".contains("the first row must name an \"URL\" column")
        }
        request.manifest = jsonl.path
        _ = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(report.refused.map(\.reason).first?.hasPrefix("not an object with an \"URL\" string") == true)
    }

    /// `--fields` keeps only the other fields named; a CSV without one of them is refused.
    @Test func onlyTheFieldsAskedForAreKept() throws {
        let folder = try Self.folder("fields")
        defer { try? FileManager.default.removeItem(at: folder) }
        let jsonl = folder.appendingPathComponent("m.jsonl"), csv = folder.appendingPathComponent("m.csv")
        try Data(#"{"image": "/d/a.jpg", "id": 7, "alt": "a dog", "long": "x"}"#.utf8).write(to: jsonl)
        try Data("image,id,alt,long\n/d/b.jpg,8,a cat,y\n".utf8).write(to: csv)
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.fields = ["id", "alt"]
        var report = ImageListing.Report()
        for (manifest, expected) in [(jsonl, #"{"alt":"a dog","id":7}"#), (csv, #"{"alt":"a cat","id":"8"}"#)] {
            request.manifest = manifest.path
            #expect(
                try ImageListing.collect(request, reader: ImageReader(), report: &report).map(\.metadata) == [expected])
        }
        request.fields = []
        #expect(try ImageListing.collect(request, reader: ImageReader(), report: &report).map(\.metadata) == [nil])
        request.fields = ["id", "source"]
        #expect { try ImageListing.check(request, reader: ImageReader()) } throws: {
            "\($0)".contains("no \"source\" column (--fields)")
        }
    }

    /// `--text-column` names the field or column of the question or expression; one a CSV lacks is refused.
    @Test func theTextColumnMayHaveAnotherName() throws {
        let folder = try Self.folder("text-column")
        defer { try? FileManager.default.removeItem(at: folder) }
        let jsonl = folder.appendingPathComponent("m.jsonl"), csv = folder.appendingPathComponent("m.csv")
        try Data(
            [
                #"{"image": "/d/a.jpg", "prompt": "What is it?", "question": "kept as a field"}"#,
                #"{"image": "/d/b.jpg", "question": "no prompt here"}"#,
            ].joined(separator: "\n").utf8
        ).write(to: jsonl)
        try Data("image,prompt\n/d/c.jpg,Which colour?\n".utf8).write(to: csv)
        var request = ImageListing.Request(takesText: true, textName: "question", sharedText: "")
        request.textColumn = "prompt"
        request.manifest = jsonl.path
        var report = ImageListing.Report()
        let tasks = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(tasks.map(\.text) == ["What is it?"] && tasks.map(\.metadata) == [#"{"question":"kept as a field"}"#])
        #expect(report.refused.map(\.line) == [2] && report.refused[0].reason.hasPrefix("no question for"))
        request.manifest = csv.path
        #expect(
            try ImageListing.collect(request, reader: ImageReader(), report: &report).map(\.text) == ["Which colour?"])
        request.textColumn = "query"
        #expect { try ImageListing.check(request, reader: ImageReader()) } throws: {
            "\($0)".contains("the first row names no \"query\" column")
        }
    }

    @Test func manifestFieldsBesidesTheImageAndTextAreMetadata() throws {
        let folder = try Self.folder("metadata")
        defer { try? FileManager.default.removeItem(at: folder) }
        let jsonl = folder.appendingPathComponent("m.jsonl"), csv = folder.appendingPathComponent("m.csv")
        try Data(
            [
                #"{"image": "/d/a.jpg", "question": "What?", "id": 7, "source": {"shop": "x"}}"#,
                #"{"image": "/d/b.jpg", "question": "Who?"}"#,
                #"{"image": "/d/a.jpg", "question": "What?", "id": 8}"#,
                #"{"image": "/d/c.jpg", "question": "Why?", "note": "a\u0000b"}"#,
                #"{"image": "/d/f.jpg", "question": "Whose?", "path": "C:\\u0000\\x"}"#,
                "{\"image\": \"/d/e.jpg\", \"question\": \"How?\", \"note\": \"\(String(repeating: "x", count: 9000))\"}",
            ].joined(separator: "\n").utf8
        ).write(to: jsonl)
        try Data("image,question,sku,shelf\n/d/a.jpg,What?,s-1,\"3,b\"\n".utf8).write(to: csv)
        var request = ImageListing.Request(takesText: true, textName: "question", sharedText: "")
        request.manifest = jsonl.path
        var report = ImageListing.Report()
        let tasks = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(
            tasks.map(\.metadata) == [#"{"id":7,"source":{"shop":"x"}}"#, nil, #"{"path":"C:\\u0000\\x"}"#],
            "the first of one image and text stays; a backslash before u0000 is no NUL")
        #expect(report.refused.map(\.line) == [4, 6])
        #expect(report.refused.map(\.reason).joined().contains("NUL") && report.refused[1].reason.contains("8192"))
        request.manifest = csv.path
        report = ImageListing.Report()
        let rows = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(rows.map(\.metadata) == [#"{"shelf":"3,b","sku":"s-1"}"#])
        // Only the field the text came from is left out: a caption job takes none (LAION's alt text stays), and a
        // question beside a `text` keeps the `text`.
        let both = folder.appendingPathComponent("both.jsonl")
        try Data(#"{"image": "/d/a.jpg", "text": "alt text", "question": "What?"}"#.utf8).write(to: both)
        for (takesText, expected) in [
            (false, #"{"question":"What?","text":"alt text"}"#), (true, #"{"text":"alt text"}"#),
        ] {
            var request = ImageListing.Request(takesText: takesText, textName: "question", sharedText: "")
            request.manifest = both.path
            report = ImageListing.Report()
            #expect(
                try ImageListing.collect(request, reader: ImageReader(), report: &report).map(\.metadata) == [expected])
        }
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
