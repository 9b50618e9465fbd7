// Image URIs: paths, file://, http(s):// and archive members.

import ImageSources
import Testing

@Suite struct ImageLocationTests {
    @Test func everySchemeParses() throws {
        #expect(try ImageLocation("/data/a.jpg") == .file(path: "/data/a.jpg"))
        #expect(try ImageLocation("file:///data/a%20b.jpg") == .file(path: "/data/a b.jpg"))
        // A percent escape is two hex digits, nothing else (not a sign), and may end the URI.
        #expect(try ImageLocation("file:///data/a%-0%+4.jpg") == .file(path: "/data/a%-0%+4.jpg"))
        #expect(try ImageLocation("file:///data/a%41") == .file(path: "/data/aA"))
        #expect(try ImageLocation("https://x.example/a.jpg?sig=1") == .http(url: "https://x.example/a.jpg?sig=1"))
        #expect(try ImageLocation("HTTP://x.example/a.jpg") == .http(url: "HTTP://x.example/a.jpg"))
        #expect(try ImageLocation("s3://bucket/a b.jpg") == .http(url: "s3://bucket/a b.jpg"))
        #expect(
            ImageReader.isRemote("s3://bucket/a.jpg")
                && ImageListing.resolve("s3://b/a.jpg", against: "/x") == "s3://b/a.jpg")
        #expect(
            try ImageLocation("tar:/s/00042.tar!/images/0001.jpg")
                == .tarMember(archive: "/s/00042.tar", member: "images/0001.jpg"))
        #expect(try ImageLocation("zip:/s/a.zip!/b!/c.png") == .zipMember(archive: "/s/a.zip", member: "b!/c.png"))
        #expect(
            try ImageLocation("tar:https://h.example/s/00042.tar?v=1#offset=1536&size=24873!/images/0001.jpg")
                == .remoteTarMember(
                    url: "https://h.example/s/00042.tar?v=1", member: "images/0001.jpg", data: 1536..<26409))
    }

    @Test func remoteMemberURIsRoundTripAndShareTheirArchivePart() throws {
        let uri = ImageLocation.memberURI(url: "http://h.example/a.tar", member: "x/1.jpg", data: 1024..<1124)
        #expect(uri == "tar:http://h.example/a.tar#offset=1024&size=100!/x/1.jpg")
        #expect(
            try ImageLocation(uri)
                == .remoteTarMember(url: "http://h.example/a.tar", member: "x/1.jpg", data: 1024..<1124))
        #expect(try ImageLocation(uri).archiveMember! == ("http://h.example/a.tar", "x/1.jpg"))
        #expect(ImageLocation.archivePart(of: uri) == "tar:http://h.example/a.tar!/")
        #expect(ImageLocation.archivePart(of: "tar:/s/a.tar!/b#1.jpg") == "tar:/s/a.tar!/")
        #expect(ImageListing.resolve(uri, against: "/elsewhere") == uri, "a URL is not a relative path")
        #expect(ImageReader.isRemote(uri) && !ImageReader.isRemote("tar:/s/a.tar!/1.jpg"))

        let entry = RemoteZipEntry(header: 4096, packedSize: 900, size: 1000, crc32: 0x1C29_1CA3)
        let zip = ImageLocation.memberURI(url: "https://h.example/a.zip?v=1", member: "x/1.jpg", entry: entry)
        #expect(zip == "zip:https://h.example/a.zip?v=1#header=4096&packed=900&size=1000&crc=1c291ca3!/x/1.jpg")
        #expect(
            try ImageLocation(zip)
                == .remoteZipMember(url: "https://h.example/a.zip?v=1", member: "x/1.jpg", entry: entry))
        #expect(ImageLocation.archivePart(of: zip) == "zip:https://h.example/a.zip?v=1!/")
        #expect(ImageReader.isRemote(zip) && !ImageReader.isRemote("zip:/s/a.zip!/1.jpg"))
    }

    @Test(arguments: [
        ("relative/a.jpg", "not an absolute path"), ("gs://bucket/a.jpg", "gs is not supported"),
        ("tar:/s/a.tar", "tar:/path/to/archive!/member"), ("zip:a.zip!/b.png", "must be absolute"),
        ("tar:/s/a.tar!/", "no member"), ("file://a.jpg", "absolute path"),
        ("tar:https://h.example/a.tar!/1.jpg", "needs where its bytes lie"),
        ("tar:https://h.example/a.tar#offset=100&size=5!/1.jpg", "not a tar member's"),
        ("tar:https://h.example/a.tar#offset=0&size=5!/1.jpg", "not a tar member's"),
        ("tar:https://h.example/a.tar#size=5!/1.jpg", "not a tar member's"),
        ("tar:https://h.example/a.tar#offset=512&size=-5!/1.jpg", "not a tar member's"),
        ("zip:https://h.example/a.zip!/1.jpg", "needs where its bytes lie"),
        ("zip:https://h.example/a.zip#header=0&packed=5&size=5!/1.jpg", "not a zip member's"),
        ("zip:https://h.example/a.zip#header=0&packed=5&size=5&crc=1ffffffff!/1.jpg", "not a zip member's"),
        ("zip:https://h.example/a.zip#header=0&packed=5&size=-5&crc=0!/1.jpg", "not a zip member's"),
    ])
    func badURIsAreRefusedWithTheReason(_ uri: String, _ reason: String) {
        #expect {
            try ImageLocation(uri)
        } throws: { error in
            "\(error)".contains(reason) && "\(error)".hasPrefix(uri)
        }
    }

    @Test func memberURIsFollowTheArchiveKind() {
        #expect(ImageLocation.memberURI(archive: "/s/a.tar", member: "x/1.jpg") == "tar:/s/a.tar!/x/1.jpg")
        #expect(ImageLocation.memberURI(archive: "/s/B.ZIP", member: "1.png") == "zip:/s/B.ZIP!/1.png")
    }
}
