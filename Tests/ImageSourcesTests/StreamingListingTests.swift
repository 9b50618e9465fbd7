// Listing a line, a record or a folder at a time: the order of a directory walk, lines that span the read buffer,
// lines too long to hold, and refusals counted past the ones kept.

import Foundation
import Testing

@testable import ImageSources

@Suite struct StreamingListingTests {
    static func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url)
    }

    static func listed(_ configure: (inout ImageListing.Request) -> Void) throws -> (
        [ListedImage], ImageListing.Report
    ) {
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        configure(&request)
        var report = ImageListing.Report()
        var images: [ListedImage] = []
        try ImageListing.forEach(request, reader: ImageReader(), report: &report) { images.append($0) }
        return (images, report)
    }

    /// The walk lists files in the order of their sorted paths (a file `a.jpg` before the folder `a`, as `.` sorts
    /// before `/`), takes links to files and leaves links to folders, so that a link to an ancestor is no loop.
    @Test func aTreeIsWalkedInPathOrderWithoutFollowingFolderLinks() throws {
        let root = try ListingTests.folder("walk")
        defer { try? FileManager.default.removeItem(at: root) }
        let files = [
            "a.jpg", "a/z.jpg", "a/b/c.png", "a-b.jpg", "b.JPG", "b/0.jpg", "c.webp", "notes.txt", ".hidden.jpg",
        ]
        for file in files {
            let url = root.appendingPathComponent(file)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Self.write("x", to: url)
        }
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("link.jpg").path,
            withDestinationPath: root.appendingPathComponent("a.jpg").path)
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("loop").path, withDestinationPath: root.path)
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("gone.jpg").path, withDestinationPath: "/nonexistent/x.jpg")
        let (images, report) = try Self.listed { $0.directory = root.path }
        let base = root.standardizedFileURL.path
        let relative = images.map { String($0.uri.dropFirst(base.count + 1)) }
        #expect(
            relative == [
                ".hidden.jpg", "a-b.jpg", "a.jpg", "a/b/c.png", "a/z.jpg", "b.JPG", "b/0.jpg", "c.webp", "link.jpg",
            ])
        #expect(relative == relative.sorted(), "the order of the sorted paths")
        #expect(report.unreadableFolders.isEmpty)

        let (excluded, _) = try Self.listed {
            $0.directory = root.path
            $0.exclude = ["a/*"]
        }
        #expect(excluded.count == relative.count - 2, "an exclude glob matches the path under the folder")
    }

    /// A CRLF split by the read buffer's end is one line end, and a line over the limit is refused by its number
    /// while the lines after it are read.
    @Test func linesSpanTheReadBufferAndAnOverlongLineIsRefused() throws {
        let folder = try ListingTests.folder("buffer")
        defer { try? FileManager.default.removeItem(at: folder) }
        let list = folder.appendingPathComponent("urls.txt")
        // The first line ends with the CR at byte 1,048,575 (the buffer's last) and the LF right after it.
        let first = "https://x.example/" + String(repeating: "a", count: (1 << 20) - 1 - 18 - 4) + ".jpg"
        let overlong = "https://x.example/" + String(repeating: "b", count: FileLines.maximumBytes) + ".jpg"
        try Self.write(
            first + "\r\n" + "https://x.example/second.jpg\n" + overlong + "\r\nhttps://x.example/last.jpg", to: list)
        let (images, report) = try Self.listed { $0.urls = list.path }
        #expect(images.map(\.uri).suffix(2) == ["https://x.example/second.jpg", "https://x.example/last.jpg"])
        #expect(images.count == 2, "the first line is over the 4096-byte URL limit: \(report.refused)")
        #expect(report.refused.map(\.line) == [1, 3])
        #expect(report.refused.last?.reason.contains("line over") == true)

        // The same across a CSV manifest: a record over the limit (an unclosed quote runs to the end) is refused.
        let manifest = folder.appendingPathComponent("m.csv")
        try Self.write(
            "image,question\r\n/d/a.jpg,What?\r\n/d/b.jpg,\"" + String(repeating: "q", count: CSV.maximumBytes + 10),
            to: manifest)
        let (rows, csvReport) = try Self.listed {
            $0.manifest = manifest.path
            $0.takesText = true
        }
        #expect(rows.map(\.text) == ["What?"])
        #expect(csvReport.refused.map(\.line) == [3] && csvReport.refused[0].reason.contains("row over"))
    }

    /// Every bad line is counted; the first thousand are kept with their reasons.
    @Test func refusalsAreCountedPastTheOnesKept() throws {
        let folder = try ListingTests.folder("refusals")
        defer { try? FileManager.default.removeItem(at: folder) }
        let list = folder.appendingPathComponent("urls.txt")
        try Self.write((0..<2500).map { "gs://bucket/\($0).jpg\nhttps://x.example/\($0).jpg\n" }.joined(), to: list)
        let (images, report) = try Self.listed { $0.urls = list.path }
        #expect(images.count == 2500)
        #expect(report.refusedCount == 2500 && report.refused.count == ImageListing.Report.keptRefusals)
        #expect(
            report.refused.first?.line == 1 && report.refused.last?.line == 2 * ImageListing.Report.keptRefusals - 1)
    }

    /// Sources that cannot be listed at all are refused before any image is listed from the others.
    @Test func unlistableSourcesAreRefusedBeforeAnythingIsListed() throws {
        let folder = try ListingTests.folder("check")
        defer { try? FileManager.default.removeItem(at: folder) }
        let list = folder.appendingPathComponent("urls.txt"), csv = folder.appendingPathComponent("m.csv")
        try Self.write("https://x.example/a.jpg\n", to: list)
        try Self.write("path,question\n/d/a.jpg,What?\n", to: csv)
        for configure: (inout ImageListing.Request) -> Void in [
            { $0.archives = [folder.path + "/*.tar"] },
            { $0.manifest = csv.path },
            { $0.manifest = folder.path },
            { $0.directory = list.path },
        ] {
            var seen = 0
            var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
            request.urls = list.path
            configure(&request)
            var report = ImageListing.Report()
            #expect(throws: ImageSourceError.self) {
                try ImageListing.forEach(request, reader: ImageReader(), report: &report) { _ in seen += 1 }
            }
            #expect(seen == 0)
        }
    }
}
