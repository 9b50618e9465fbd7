// s3:// objects read from a real S3 server (moto's, which checks every signature with botocore's signer): images,
// and members of tar and zip shards listed and read in place with signed range requests; wrong or missing
// credentials, missing objects and non-public endpoints refused with the reason.

import Foundation
import TestSupport
import Testing

@testable import ImageSources

@Suite(.enabled(if: S3Server.runs, "needs moto's S3 server: INFMLLM_S3_SERVER=$(tools/s3_server.sh)"))
struct S3ObjectTests {
    @Test func objectsAndShardMembersAreReadWithSignedRequests() throws {
        let (tar, root) = try RemoteArchiveTests.shard()
        defer { try? FileManager.default.removeItem(at: root) }
        let zip = try RemoteZipArchiveTests.zip(root, "batch.zip")
        let png = try Data(contentsOf: root.appendingPathComponent("tree/nested/a.png"))
        let server = try S3Server()
        try server.put("photos", "2026/a b+c.png", png)
        try server.put("photos", "shards/s-000.tar", tar)
        try server.put("photos", "x/../dots.png", Data("a key with dot segments".utf8))
        for key in ["2026/b.JPG", "2026/sub/c d+e.webp", "2026/notes.txt", "2026/sub/skip.png", "2027/f.png"] {
            try server.put("photos", key, Data(key.utf8))
        }
        try server.put("photos", "shards/batch.zip", zip)
        try server.requireSignatures()
        func reader(secret: String? = nil, signed: Bool = true, privateAddresses: Bool = true) -> ImageReader {
            let settings =
                signed
                ? S3Settings(
                    accessKey: server.accessKey, secretKey: secret ?? server.secretKey, endpoint: server.endpoint)
                : S3Settings(endpoint: server.endpoint)
            return ImageReader(
                fetch: FetchSettings(
                    timeout: 5, attempts: 2, backoff: 0.1, allowPrivateAddresses: privateAddresses, s3: settings))
        }
        #expect(Data(try reader().bytes(of: "s3://photos/2026/a b+c.png")) == png)
        #expect {
            try reader(secret: "not-the-secret").bytes(of: "s3://photos/2026/a b+c.png")
        } throws: { "\($0)".hasSuffix("HTTP 403") }
        #expect {
            try reader(signed: false).bytes(of: "s3://photos/2026/a b+c.png")
        } throws: { "\($0)".hasSuffix("HTTP 403") }
        #expect { try reader().bytes(of: "s3://photos/none.png") } throws: { "\($0)".hasSuffix("HTTP 404") }
        // A key is sent as it was signed: `x/../dots.png` is its own object, not `dots.png`.
        #expect(String(decoding: try reader().bytes(of: "s3://photos/x/../dots.png"), as: UTF8.self).hasPrefix("a key"))
        // The configured endpoint is reached on a private address without --allow-private-urls; other URLs are not.
        #expect(Data(try reader(privateAddresses: false).bytes(of: "s3://photos/2026/a b+c.png")) == png)
        #expect {
            try reader(privateAddresses: false).bytes(of: server.endpoint + "/photos/2026/a%20b%2Bc.png")
        } throws: { "\($0)".contains("refused to connect to 127.0.0.1") }

        // A prefix's objects, listed a page at a time (two keys a page here), filtered as a folder's files are.
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.directory = "s3://photos/2026/"
        request.exclude = ["sub/skip.png"]
        var listed: [String] = []
        try reader().objects(under: "s3://photos/2026/", pageSize: 2) { listed.append($0) }
        #expect(
            listed == [
                "s3://photos/2026/a b+c.png", "s3://photos/2026/b.JPG", "s3://photos/2026/notes.txt",
                "s3://photos/2026/sub/c d+e.webp", "s3://photos/2026/sub/skip.png",
            ])
        var listing = ImageListing.Report()
        let found = try ImageListing.collect(request, reader: reader(), report: &listing).map(\.uri)
        #expect(found == ["s3://photos/2026/a b+c.png", "s3://photos/2026/b.JPG", "s3://photos/2026/sub/c d+e.webp"])
        #expect(String(decoding: try reader().bytes(of: found[2]), as: UTF8.self) == "2026/sub/c d+e.webp")
        request.directory = "s3://absent-bucket/"
        #expect {
            try ImageListing.collect(request, reader: reader(), report: &listing)
        } throws: { "\($0)".hasPrefix("s3://absent-bucket/") && "\($0)".contains("HTTP 404") }

        // Shards in the bucket: listed (a tar as it streams past, a zip from its directory) and read in place.
        let (images, report) = try RemoteArchiveTests.listing(
            ["s3://photos/shards/s-000.tar", "s3://photos/shards/batch.zip"], reader: reader())
        #expect(report.damagedArchives.isEmpty, "\(report.damagedArchives)")
        let members = RemoteZipArchiveTests.members
        #expect(images.count == 2 * members.count, "\(images.map(\.uri))")
        for image in images {
            #expect(image.uri.hasPrefix("tar:s3://photos/shards/s-000.tar#") || image.uri.hasPrefix("zip:s3://photos/"))
            let member = try #require(try ImageLocation(image.uri).archiveMember?.member)
            let expected = try Data(contentsOf: root.appendingPathComponent("tree/" + member))
            #expect(Data(try reader().bytes(of: image.uri)) == expected, "\(image.uri)")
        }
    }
}
