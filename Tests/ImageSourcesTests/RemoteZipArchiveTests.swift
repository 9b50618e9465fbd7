// Zip archives served over HTTP by a real server (nginx on loopback): listed from their central directory with
// range requests, each member then read with one range request of its local header and data, checked against what
// the directory said when it was listed. Archives as Info-ZIP writes them (deflated and stored, to a pipe, with data
// descriptors, ZIP64, with a comment, encrypted), with a directory larger than the end of the file read first, with
// local extra fields past the one request's allowance, replaced after listing, and on servers without byte ranges.

import Foundation
import TestSupport
import Testing

@testable import ImageSources

@Suite struct RemoteZipArchiveTests {
    static let members = ["top.jpg", "nested/a.png", "nested/deeper/b.JPG", ArchiveTests.longName, "zz-last.png"]
    static let everything = ["top.jpg", "nested", "meta.json", "captions.txt", ArchiveTests.longName, "zz-last.png"]

    /// A zip of the archive tests' tree, written by Info-ZIP's `zip` with `options` (to a pipe when `piped`).
    static func zip(_ root: URL, _ name: String, options: String = "", piped: Bool = false) throws -> Data {
        let path = root.appendingPathComponent(name).path
        let names = everything.map { "'\($0)'" }.joined(separator: " ")
        let command =
            piped
            ? "cd '\(root.path)/tree' && zip -q -r \(options) - \(names) | cat > '\(path)'"
            : "cd '\(root.path)/tree' && echo 'a comment' | zip -q -r \(options) '\(path)' \(names)"
        let result = try ProcessResult.run(URL(fileURLWithPath: "/bin/sh"), ["-c", command])
        guard result.status == 0 else { throw NginxError(message: "zip failed: \(result.output)") }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test(arguments: [("", false), ("-0", false), ("-fz", false), ("-fd", false), ("-z", false), ("", true)])
    func membersAreListedFromTheDirectoryAndEachReadWithOneRangeRequest(_ options: String, _ piped: Bool) throws {
        let root = try ArchiveTests.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put("/zips/batch.zip", try Self.zip(root, "batch.zip", options: options, piped: piped))
        let reader = ImageReader(fetch: RemoteArchiveTests.quick)
        let (images, report) = try RemoteArchiveTests.listing([server.url("/zips/batch.zip")], reader: reader)
        #expect(images.map { try! ImageLocation($0.uri).archiveMember!.member }.sorted() == Self.members.sorted())
        #expect(report.skippedMembers == 3 && report.damagedArchives.isEmpty, "a.txt, meta.json, captions.txt")
        for image in images {
            guard case let .remoteZipMember(url, member, _) = try ImageLocation(image.uri) else {
                Issue.record("\(image.uri) is not a remote zip member")
                continue
            }
            #expect(url == server.url("/zips/batch.zip") && image.uri.hasPrefix("zip:"))
            let expected = try Data(contentsOf: root.appendingPathComponent("tree/" + member))
            #expect(Data(try reader.bytes(of: image.uri)) == expected, "\(image.uri)")
        }
        // The first 512 bytes when checked, the end of the file (holding the directory), then one request a member.
        let log = try server.settledAccessLog().filter { $0.contains("/zips/") }
        #expect(log.filter { $0.contains("\" 206 ") }.count == 2 + images.count, "\(log)")
        #expect(log.count == 2 + images.count, "\(log)")

        // Workers fetch from non-public addresses only when allowed.
        #expect {
            try ImageReader().bytes(of: images[0].uri)
        } throws: { "\($0)".contains("refused to connect to 127.0.0.1") && "\($0)".hasPrefix(images[0].uri) }
        // Over the reader's limit: refused before anything is asked for.
        let big = try #require(images.first { $0.uri.hasSuffix("zz-last.png") })
        #expect {
            try ImageReader(fetch: RemoteArchiveTests.quick, maxBytes: 50_000).bytes(of: big.uri)
        } throws: { "\($0)".contains("100000 bytes, over the 50000-byte limit") }
    }

    /// A directory longer than the end of the file read first (64 KiB) is completed with a range request of its own
    /// (see `theDirectoryIsAskedOfTheFileWhoseEndWasRead` for its condition).
    @Test func aLargeDirectoryIsReadWithARequestOfItsOwn() throws {
        let root = ScratchFolders.url("infmllm-zip-many")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("tree/a-folder-with-a-name-of-some-length")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for index in 0..<1_500 {
            try Data("image \(index)".utf8).write(to: folder.appendingPathComponent("photo-\(index).jpg"))
        }
        let path = root.appendingPathComponent("many.zip").path
        let made = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "cd '\(root.path)/tree' && zip -q -r '\(path)' ."])
        #expect(made.status == 0, "\(made.output)")
        let server = try NginxServer()
        try server.put("/zips/many.zip", try Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = ImageReader(fetch: RemoteArchiveTests.quick)
        let (images, _) = try RemoteArchiveTests.listing([server.url("/zips/many.zip")], reader: reader)
        #expect(images.count == 1_500)
        for image in images.prefix(3) + images.suffix(3) {
            let name = (try ImageLocation(image.uri).archiveMember!.member as NSString).lastPathComponent
            let index = name.dropFirst("photo-".count).dropLast(".jpg".count)
            #expect(String(decoding: try reader.bytes(of: image.uri), as: UTF8.self) == "image \(index)")
        }
        let log = try server.settledAccessLog().filter { $0.contains("/zips/") }
        #expect(log.filter { $0.contains("\" 206 ") }.count == 3 + 6, "the start, the end, the directory: \(log)")
    }

    /// The file's end comes with its size and validators, and a later range request asked on their condition is
    /// refused once the file is another (HTTP 412, whose page is longer than the 4 bytes asked for), so a directory
    /// is never read from a file replaced meanwhile.
    @Test func theDirectoryIsAskedOfTheFileWhoseEndWasRead() throws {
        let server = try NginxServer()
        let zip = StoredZip.bytes(["a.jpg": Array(repeating: 1, count: 100_000)])
        try server.put("/zips/a.zip", zip)
        let fetcher = HTTPFetcher(settings: RemoteArchiveTests.quick)
        let (tail, size, validators) = try fetcher.fetchTail(server.url("/zips/a.zip"), count: 1_000)
        #expect(size == zip.count && Data(tail) == zip.suffix(1_000) && validators.etag != nil)
        #expect(
            try fetcher.fetch(server.url("/zips/a.zip"), range: 0..<4, condition: validators) == [0x50, 0x4B, 3, 4])
        var replaced = zip
        replaced[10] ^= 0xFF
        try server.put("/zips/a.zip", replaced)
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: 4_000_000_000)],
            ofItemAtPath: server.root.appendingPathComponent("zips/a.zip").path)
        #expect {
            try fetcher.fetch(server.url("/zips/a.zip"), range: 0..<4, condition: validators)
        } throws: { "\($0)".contains("HTTP 412") }
        // An error page longer than the range asked for is judged by its status, not refused as too long.
        #expect {
            try fetcher.fetch(server.url("/zips/none.zip"), range: 0..<4)
        } throws: { "\($0)".hasSuffix("HTTP 404") }
    }

    /// ZIP64 archives (every size and offset in extra fields, the directory found through the ZIP64 end record) and
    /// archive comments up to the longest, whose ZIP64 locator then lies before the file's last 64 KiB: read alike
    /// from a local file and over HTTP.
    @Test(arguments: [(true, 0), (true, 65_535), (true, 65_520), (false, 65_535)])
    func zip64AndLongCommentsAreReadLocallyAndOverHTTP(_ zip64: Bool, _ comment: Int) throws {
        let contents: [String: [UInt8]] = [
            "a.jpg": (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, "b/c.png": Array("small".utf8),
        ]
        let zip = StoredZip.bytes(contents, zip64: zip64, comment: comment)
        let root = ScratchFolders.url("infmllm-zip64")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let local = root.appendingPathComponent("z.zip")
        try zip.write(to: local)
        let server = try NginxServer()
        try server.put("/zips/z.zip", zip)
        let reader = ImageReader(fetch: RemoteArchiveTests.quick)
        #expect(try reader.members(ofArchive: local.path).names == ["a.jpg", "b/c.png"])
        let (images, _) = try RemoteArchiveTests.listing([server.url("/zips/z.zip")], reader: reader)
        #expect(images.count == 2)
        for image in images {
            let member = try ImageLocation(image.uri).archiveMember!.member
            #expect(try reader.bytes(of: image.uri) == contents[member], "\(image.uri)")
            #expect(try reader.bytes(of: "zip:\(local.path)!/\(member)") == contents[member])
        }
    }

    /// A name written in another encoding than UTF-8 (an older tool's code page) is read by the name it was listed
    /// by, and a zip served under a name without .zip is found by its first bytes.
    @Test func oddNamesAreReadAsListed() throws {
        let root = ScratchFolders.url("infmllm-zip-names")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let made = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "cd '\(root.path)' && printf 'latin' > \"$(printf 'caf\\351.jpg')\" && zip -q names.zip caf*.jpg"])
        #expect(made.status == 0, "\(made.output)")
        let server = try NginxServer()
        try server.put("/zips/blob", try Data(contentsOf: root.appendingPathComponent("names.zip")))
        let reader = ImageReader(fetch: RemoteArchiveTests.quick)
        let (images, _) = try RemoteArchiveTests.listing([server.url("/zips/blob")], reader: reader)
        #expect(images.count == 1 && images[0].uri.hasPrefix("zip:"), "\(images)")
        #expect(try ImageLocation(images[0].uri).archiveMember?.member == "caf\u{FFFD}.jpg")
        #expect(String(decoding: try reader.bytes(of: images[0].uri), as: UTF8.self) == "latin")
    }

    /// A local header whose extra field is longer than the one request allows for: the rest of the data is read
    /// with a second request.
    @Test func aLongLocalExtraFieldCostsASecondRequest() throws {
        let data = (0..<3_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let server = try NginxServer()
        try server.put(
            "/zips/extra.zip",
            StoredZip.bytes(["a.jpg": data, "b.png": Array(data.reversed())], localExtra: 1_500))
        let reader = ImageReader(fetch: RemoteArchiveTests.quick)
        let (images, _) = try RemoteArchiveTests.listing([server.url("/zips/extra.zip")], reader: reader)
        #expect(images.count == 2)
        #expect(try reader.bytes(of: images[0].uri) == data)
        #expect(try reader.bytes(of: images[1].uri) == Array(data.reversed()))
        let log = try server.settledAccessLog().filter { $0.contains("/zips/") }
        #expect(log.filter { $0.contains("\" 206 ") }.count == 2 + 2 * 2, "\(log)")
    }

    /// An archive replaced after it was listed: its members' places now hold other bytes, found out by the local
    /// header or the CRC-32 (never decoded as the image).
    @Test func anArchiveChangedSinceItWasListedFailsItsMembersWithTheReason() throws {
        let root = try ArchiveTests.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try NginxServer()
        try server.put("/zips/batch.zip", try Self.zip(root, "batch.zip"))
        let reader = ImageReader(fetch: RemoteArchiveTests.quick)
        let (images, _) = try RemoteArchiveTests.listing([server.url("/zips/batch.zip")], reader: reader)
        // The same names, other contents (one image's bytes changed, so its place and size stay alike).
        var changedImage = try Data(contentsOf: root.appendingPathComponent("tree/top.jpg"))
        changedImage[changedImage.count / 2] ^= 0xFF
        try changedImage.write(to: root.appendingPathComponent("tree/top.jpg"))
        try server.put("/zips/batch.zip", try Self.zip(root, "other.zip", options: "-0"))
        for image in images {
            #expect {
                try reader.bytes(of: image.uri)
            } throws: { error in
                let error = error as? ImageSourceError
                return error?.source == image.uri && error?.isTransient == false
                    && (error?.reason.contains("the archive has changed since it was listed") == true
                        || error?.reason.contains("CRC-32 does not match") == true)
            }
        }
    }

    /// Servers without byte ranges, damaged and encrypted archives, and other files are refused with the reason;
    /// an empty archive lists nothing.
    @Test func whatCannotBeReadInPlaceIsRefusedWithTheReason() throws {
        let root = try ArchiveTests.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let zip = try Self.zip(root, "batch.zip")
        let server = try NginxServer()
        try server.put("/zips/batch.zip", zip)
        try server.put("/whole/batch.zip", zip)
        try server.put("/zips/cut.zip", zip.prefix(zip.count - 200))
        try server.put("/zips/empty.zip", StoredZip.bytes([:]))
        // A directory entry whose member would lie past the directory (its offset made large).
        var misplaced = [UInt8](StoredZip.bytes(["a.jpg": Array(repeating: 7, count: 600)]))
        let entry = misplaced.count - 22 - (46 + 5)
        misplaced.replaceSubrange((entry + 42)..<(entry + 46), with: [0, 0, 0, 0x10])
        try server.put("/zips/misplaced.zip", Data(misplaced))
        try server.put("/zips/secret.zip", try Self.zip(root, "secret.zip", options: "-P secret"))
        let reader = ImageReader(fetch: RemoteArchiveTests.quick)
        #expect {
            try RemoteArchiveTests.listing([server.url("/whole/batch.zip")], reader: reader)
        } throws: { "\($0)".contains("does not serve byte ranges") }
        #expect {
            try RemoteArchiveTests.listing([server.url("/zips/cut.zip")], reader: reader)
        } throws: { "\($0)".hasPrefix(server.url("/zips/cut.zip")) && "\($0)".contains("not a readable ZIP archive") }
        #expect(try RemoteArchiveTests.listing([server.url("/zips/empty.zip")], reader: reader).0.isEmpty)
        #expect {
            try RemoteArchiveTests.listing([server.url("/zips/misplaced.zip")], reader: reader)
        } throws: { error in
            "\(error)" == server.url("/zips/misplaced.zip")
                + ": not a readable ZIP archive: entry a.jpg runs past the end of the members (truncated or damaged file?)"
        }

        let (images, _) = try RemoteArchiveTests.listing([server.url("/zips/batch.zip")], reader: reader)
        let moved = images[0].uri.replacingOccurrences(of: "/zips/", with: "/whole/")
        #expect {
            try reader.bytes(of: moved)
        } throws: {
            "\($0)".contains("does not serve byte ranges") && !(($0 as? ImageSourceError)?.isTransient ?? true)
        }
        let (locked, _) = try RemoteArchiveTests.listing([server.url("/zips/secret.zip")], reader: reader)
        #expect(locked.count == Self.members.count)
        #expect {
            try reader.bytes(of: locked[0].uri)
        } throws: { "\($0)".contains("the member is encrypted") }
    }
}
