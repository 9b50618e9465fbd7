// Tar shards served over HTTP by a real server (nginx on loopback): listed from their headers as they stream past,
// each member then read with one range request and checked against its header; servers without byte ranges,
// shards changed since they were listed, compressed or missing ones, and streams that stall part way.

import Foundation
import TestSupport
import Testing

@testable import ImageSources

@Suite struct RemoteArchiveTests {
    static let quick = FetchSettings(timeout: 1, attempts: 3, backoff: 0.1, allowPrivateAddresses: true)

    /// A GNU tar of the archive tests' tree (nested images, a long name, members that are not images), its bytes,
    /// and the tree's folder.
    static func shard(_ name: String = "shard.tar") throws -> (bytes: Data, root: URL) {
        let root = try ArchiveTests.tree()
        let tar = try ArchiveTests.archive(
            root, name, "tar --format=gnu -cf",
            ["top.jpg", "nested", "meta.json", ArchiveTests.longName, "zz-last.png"])
        return (try Data(contentsOf: URL(fileURLWithPath: tar)), root)
    }

    static func listing(_ archives: [String], reader: ImageReader) throws -> ([ListedImage], ImageListing.Report) {
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.archives = archives
        var report = ImageListing.Report()
        return (try ImageListing.collect(request, reader: reader, report: &report), report)
    }

    @Test func shardsAreListedFromTheirHeadersAndEachMemberReadWithOneRangeRequest() throws {
        let (tar, root) = try Self.shard()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put("/shards/s-000.tar", tar)
        try server.put("/shards/s-001.tar", tar)
        let reader = ImageReader(fetch: Self.quick)
        let (images, report) = try Self.listing([server.url("/shards/s-{000..001}.tar")], reader: reader)
        let members = ["top.jpg", "nested/a.png", "nested/deeper/b.JPG", ArchiveTests.longName, "zz-last.png"]
        #expect(images.count == 2 * members.count, "\(images.map(\.uri))")
        #expect(report.skippedMembers == 4, "a.txt and meta.json in each")
        for image in images {
            guard case let .remoteTarMember(url, member, data) = try ImageLocation(image.uri) else {
                Issue.record("\(image.uri) is not a remote member")
                continue
            }
            #expect(url.hasPrefix(server.url("/shards/s-00")) && members.contains(member))
            let expected = try Data(contentsOf: root.appendingPathComponent("tree/" + member))
            #expect(data.count == expected.count && tar[data] == expected)
            #expect(Data(try reader.bytes(of: image.uri)) == expected, "\(image.uri)")
        }
        // One request of the first 512 bytes per shard up front, one stream, then one range request per member.
        let log = server.requests("/shards/", atLeast: 4 + images.count)
        #expect(log.filter { $0.contains("\" 206 ") }.count == 2 + images.count, "\(log)")
        #expect(log.filter { $0.contains("\" 200 ") }.count == 2, "\(log)")

        // Workers fetch from non-public addresses only when allowed, members included.
        #expect {
            try ImageReader().bytes(of: images[0].uri)
        } throws: { "\($0)".contains("refused to connect to 127.0.0.1") && "\($0)".hasPrefix(images[0].uri) }
        // Over the reader's limit: refused before anything is asked for.
        let big = try #require(images.first { $0.uri.hasSuffix("zz-last.png") })
        #expect {
            try ImageReader(fetch: Self.quick, maxBytes: 50_000).bytes(of: big.uri)
        } throws: { "\($0)".contains("100000 bytes, over the 50000-byte limit") }
    }

    /// Members are read in place only where the server serves byte ranges: a server that answers with the whole
    /// file is refused up front, and a member's read fails at once, having read no more than its bytes.
    @Test func aServerWithoutByteRangesIsRefused() throws {
        let (tar, root) = try Self.shard()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put("/shards/s.tar", tar)
        try server.put("/whole/s.tar", tar)
        #expect {
            try Self.listing([server.url("/whole/s.tar")], reader: ImageReader(fetch: Self.quick))
        } throws: { "\($0)".contains("does not serve byte ranges") }
        let (images, _) = try Self.listing([server.url("/shards/s.tar")], reader: ImageReader(fetch: Self.quick))
        let moved = images[0].uri.replacingOccurrences(of: "/shards/", with: "/whole/")
        #expect {
            try ImageReader(fetch: Self.quick).bytes(of: moved)
        } throws: {
            "\($0)".contains("does not serve byte ranges") && !(($0 as? ImageSourceError)?.isTransient ?? true)
        }
    }

    /// A shard replaced after it was listed: its members' ranges now hold other bytes, found out by the header
    /// before them (not decoded as the image), or lie past its end.
    @Test func aShardChangedSinceItWasListedFailsItsMembersWithTheReason() throws {
        let (tar, root) = try Self.shard()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put("/shards/s.tar", tar)
        let reader = ImageReader(fetch: Self.quick)
        let (images, _) = try Self.listing([server.url("/shards/s.tar")], reader: reader)
        let other = try ArchiveTests.archive(root, "other.tar", "tar -cf", ["nested", "top.jpg"])
        try server.put("/shards/s.tar", try Data(contentsOf: URL(fileURLWithPath: other)))
        var changed = 0, shorter = 0
        for image in images {
            do {
                _ = try reader.bytes(of: image.uri)
                Issue.record("\(image.uri) was read from the replaced shard")
            } catch let error as ImageSourceError {
                #expect(error.source == image.uri && !error.isTransient)
                if error.reason.contains("the archive has changed since it was listed") { changed += 1 }
                if error.reason.contains("shorter") { shorter += 1 }
            }
        }
        #expect(changed >= 2 && shorter >= 1 && changed + shorter == images.count, "\(changed) \(shorter)")
    }

    @Test func compressedMissingAndOtherFilesAreRefusedBeforeAnythingIsListed() throws {
        let (tar, root) = try Self.shard()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put("/shards/s.tar", tar)
        try server.put("/shards/s.tar.gz", try Data(contentsOf: URL(fileURLWithPath: try Self.gzip(tar, in: root))))
        try server.put("/shards/a.png", try Data(contentsOf: root.appendingPathComponent("tree/nested/a.png")))
        for (path, reason) in [
            ("/shards/s.tar.gz", "a gzip-compressed file, not a tar archive"), ("/shards/none.tar", "HTTP 404"),
            ("/shards/a.png", "not a tar or zip archive (no tar header or zip signature at its start)"),
        ] {
            var listed = 0
            var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
            request.archives = [server.url("/shards/s.tar"), server.url(path)]
            var report = ImageListing.Report()
            #expect {
                try ImageListing.forEach(request, reader: ImageReader(fetch: Self.quick), report: &report) { _ in
                    listed += 1
                }
            } throws: { "\($0)".contains(reason) && "\($0)".hasPrefix(server.url(path)) }
            #expect(listed == 0, "nothing listed from the good shard first")
        }
        for url in ["http://h.example/s-#1.tar", "http://h.example/a!/b.tar"] {
            #expect {
                try Self.listing([url], reader: ImageReader(fetch: Self.quick))
            } throws: { "\($0)".contains("cannot hold # or !/") }
        }
    }

    /// An empty file is an empty archive, as a local one is; a compressed file shorter than a header is named.
    @Test func shortFilesAreJudgedByWhatTheyHold() throws {
        let server = try NginxServer()
        let root = try ArchiveTests.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        try server.put("/shards/empty.tar", Data())
        let tiny = try Data(contentsOf: URL(fileURLWithPath: try Self.gzip(Data("x".utf8), in: root)))
        #expect(tiny.count < 512)
        try server.put("/shards/tiny.tar", tiny)
        let reader = ImageReader(fetch: Self.quick)
        let (images, report) = try Self.listing([server.url("/shards/empty.tar")], reader: reader)
        #expect(images.isEmpty && report.damagedArchives.isEmpty)
        #expect {
            try Self.listing([server.url("/shards/tiny.tar")], reader: reader)
        } throws: { "\($0)".contains("a gzip-compressed file, not a tar archive") }
    }

    /// A shard replaced while its listing stream is resumed is refused (its ETag no longer matches), not spliced
    /// from two versions, whether the server resumes with a range or sends the whole file again.
    @Test(arguments: ["/stall/", "/whole-stall/"])
    func aShardReplacedDuringItsListingIsRefused(_ location: String) throws {
        let (tar, root) = try Self.shard()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put(location + "s.tar", tar)
        var replacement = tar
        replacement[replacement.count - 2048] ^= 0xFF  // the same size, other bytes, a later time
        let fetcher = HTTPFetcher(settings: Self.quick)
        var replaced = false
        #expect {
            try fetcher.stream(server.url(location + "s.tar")) { _ in
                if !replaced {
                    replaced = true
                    // Renamed into place: the answer in progress keeps reading the file it opened.
                    let file = server.root.appendingPathComponent(location + "s.tar")
                    try? replacement.write(to: file, options: .atomic)
                    try? FileManager.default.setAttributes(
                        [.modificationDate: Date(timeIntervalSince1970: 4_000_000_000)], ofItemAtPath: file.path)
                }
                return true
            }
        } throws: { "\($0)".contains("HTTP 412: the file has changed since the first part of it was read") }
    }

    /// An error page is not read past 64 KiB, and its status still says what happened (503: transient).
    @Test func anErrorPageIsCutShortAndJudgedByItsStatus() throws {
        let server = try NginxServer()
        try server.put("/huge.bin", Data(count: 64 << 20))
        let settings = FetchSettings(timeout: 10, attempts: 1, allowPrivateAddresses: true)
        #expect {
            try ImageReader(fetch: settings).bytes(of: server.url("/huge-error"))
        } throws: { error in
            let error = error as? ImageSourceError
            return error?.reason == "HTTP 503 (after 1 attempts)" && error?.isTransient == true
        }
        let log = server.requests("/huge-error", atLeast: 1)
        // The combined log format: ... "GET /huge-error HTTP/1.1" 503 BYTES ...
        let sent = log.first.flatMap { line in line.components(separatedBy: "\" 503 ").last?.split(separator: " ").first
        }
        #expect(sent.flatMap { Int($0) }.map { $0 < 32 << 20 } == true, "\(log)")
    }

    static func gzip(_ bytes: Data, in root: URL) throws -> String {
        let plain = root.appendingPathComponent("plain.tar"), gzipped = root.appendingPathComponent("plain.tar.gz")
        try bytes.write(to: plain)
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "gzip -c '\(plain.path)' > '\(gzipped.path)'"])
        guard result.status == 0 else { throw NginxError(message: result.output) }
        return gzipped.path
    }

    /// A listing stream that stalls part way is taken up where it stopped: with a range request, or where the
    /// server serves no ranges, by reading the body again and skipping what was read. Either way the index is the
    /// whole shard's.
    @Test(arguments: ["/stall/", "/whole-stall/"])
    func aStalledListingIsResumedWhereItStopped(_ location: String) throws {
        let (tar, root) = try Self.shard()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put(location + "s.tar", tar)
        let reader = ImageReader(fetch: Self.quick)
        let url = server.url(location + "s.tar")
        let listing = try reader.members(ofRemoteArchive: url)
        let whole = tar.withUnsafeBytes { TarIndex(bytes: $0) }
        #expect(listing.problem == nil && listing.names == whole.names)
        let uris = whole.members.map { ($0.key, ImageLocation.memberURI(url: url, member: $0.key, data: $0.value)) }
        #expect(listing.uris == Dictionary(uniqueKeysWithValues: uris))
        let log = server.requests(location, atLeast: 2)
        #expect(log.count == 2, "the stalled stream, then the rest: \(log)")
        // In either order: nginx logs the stalled request when it finds the connection gone.
        #expect(log.filter { $0.contains("\" 206 ") }.count == (location == "/stall/" ? 1 : 0), "\(log)")
    }
}
