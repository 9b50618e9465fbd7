// Tar and zip members listed from the archive's index and read in place, including damaged archives.

import Foundation
import ImageSources
import TestSupport
import Testing

@Suite struct ArchiveTests {
    static let images = RepositoryFiles.path("Tests/ImagingTests/Fixtures/images")
    static let longName = String(repeating: "a-very-long-folder-name/", count: 6) + "photo.png"

    /// A folder of nested images, a long path, and members that are not images.
    static func tree() throws -> URL {
        let root = ScratchFolders.url("infmllm-archive")
        let files: [(String, String)] = [
            ("top.jpg", "rgb444_64x48.jpg"), ("nested/a.png", "rgb_64x64.png"),
            ("nested/deeper/b.JPG", "gray_64x48.jpg"),
            (longName, "rgb_64x64.png"),
        ]
        for (name, source) in files {
            let target = root.appendingPathComponent("tree/" + name)
            try FileManager.default.createDirectory(
                at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: images + "/" + source, toPath: target.path)
        }
        try Data("caption sidecar".utf8).write(to: root.appendingPathComponent("tree/nested/a.txt"))
        try Data("{}".utf8).write(to: root.appendingPathComponent("tree/meta.json"))
        try Data(String(repeating: "a compressible caption line\n", count: 400).utf8).write(
            to: root.appendingPathComponent("tree/captions.txt"))
        var noise = SplitMix64(seed: 5)
        try Data((0..<100_000).map { _ in UInt8(truncatingIfNeeded: noise.next()) }).write(
            to: root.appendingPathComponent("tree/zz-last.png"))
        return root
    }

    static func archive(_ root: URL, _ name: String, _ tool: String, _ arguments: [String]) throws -> String {
        let path = root.appendingPathComponent(name).path
        let result = try ProcessResult.run(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "cd '\(root.path)/tree' && \(tool) '\(path)' \(arguments.joined(separator: " "))"])
        guard result.status == 0 else { throw NginxError(message: "\(tool) failed: \(result.output)") }
        return path
    }

    @Test(arguments: ["--format=gnu", "--format=pax", "--format=ustar"])
    func tarMembersAreListedAndReadInPlace(_ format: String) throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let names = ["top.jpg", "nested", "meta.json"] + (format == "--format=ustar" ? [] : [Self.longName])
        let tar = try Self.archive(root, "shard.tar", "tar \(format) -cf", names)
        let reader = ImageReader()
        let listing = try reader.members(ofArchive: tar)
        #expect(listing.problem == nil)
        #expect(Set(listing.names).isSuperset(of: ["top.jpg", "nested/a.png", "nested/deeper/b.JPG", "meta.json"]))
        if format != "--format=ustar" { #expect(listing.names.contains(Self.longName)) }
        for member in ["top.jpg", "nested/deeper/b.JPG"] {
            let bytes = try reader.bytes(of: "tar:\(tar)!/\(member)")
            #expect(Data(bytes) == FileManager.default.contents(atPath: root.path + "/tree/" + member))
        }
        #expect(throws: ImageSourceError.self) { try reader.bytes(of: "tar:\(tar)!/missing.jpg") }
    }

    /// Headers read as an archive arrives, in pieces of any size (one byte, a few hundred, the whole archive) and
    /// cut anywhere (in a header, a long name, a member's data, its padding), give the index of the same bytes read
    /// at once: the same members, ranges and problem.
    @Test func headersReadInPiecesGiveTheIndexOfTheWhole() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        var archives: [[UInt8]] = []
        for format in ["--format=gnu", "--format=pax", "--format=ustar"] {
            let names = ["top.jpg", "nested", "meta.json"] + (format == "--format=ustar" ? [] : [Self.longName])
            let tar = try Self.archive(root, "shard\(archives.count).tar", "tar \(format) -cf", names)
            archives.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: tar))))
        }
        let tar = try Self.archive(root, "plain.tar", "tar -cf", ["meta.json"])
        let gzipped = root.appendingPathComponent("plain.tar.gz").path
        #expect(
            try ProcessResult.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "gzip -c '\(tar)' > '\(gzipped)'"]).status
                == 0)
        archives.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: gzipped))))
        var noise = SplitMix64(seed: 11)
        var cuts = 0
        for archive in archives {
            for trial in 0..<24 {
                // The whole archive, then cuts at random places.
                let bytes = trial < 3 ? archive[...] : archive.prefix(Int(noise.next() % UInt64(archive.count)))
                let whole = Array(bytes).withUnsafeBytes { TarIndex(bytes: $0) }
                var stream = TarStream()
                var position = bytes.startIndex
                while position < bytes.endIndex && !stream.ended {
                    let size = trial == 0 ? 1 : trial == 1 ? bytes.count : Int(noise.next() % 1500) + 1
                    let end = min(bytes.endIndex, position + size)
                    Array(bytes[position..<end]).withUnsafeBytes { stream.consume($0) }
                    position = end
                }
                let pieces = TarIndex(stream.finished())
                #expect(pieces.names == whole.names, "\(bytes.count) bytes")
                #expect(pieces.members == whole.members, "\(bytes.count) bytes")
                #expect(pieces.problem == whole.problem, "\(bytes.count) bytes")
                if whole.problem != nil { cuts += 1 }
            }
        }
        #expect(cuts > 40, "most cuts land where the archive is truncated")
    }

    /// Members as GNU tar itself lists them, for each format, with the bytes of each member's file.
    @Test(arguments: ["--format=gnu", "--format=pax", "--format=ustar", "--format=v7"])
    func theIndexHoldsWhatGNUTarLists(_ format: String) throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let names =
            ["top.jpg", "nested", "meta.json", "zz-last.png"]
            + (format.hasSuffix("gnu") || format.hasSuffix("pax")
                ? [Self.longName] : [])
        let tar = try Self.archive(root, "listed.tar", "tar \(format) -cf", names)
        let listed = try ProcessResult.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "tar -tf '\(tar)'"])
        let files = listed.output.split(separator: "\n").map(String.init).filter { !$0.hasSuffix("/") }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: tar))
        let index = bytes.withUnsafeBytes { TarIndex(bytes: $0) }
        #expect(index.problem == nil && index.names == files, "\(index.names) against \(files)")
        for name in files {
            #expect(bytes[index.members[name]!] == (try Data(contentsOf: root.appendingPathComponent("tree/" + name))))
        }
    }

    /// A pax header past what is held (1 MiB: large extended attributes) is read as far as that, and the members
    /// after it are listed: a `path` record before the cap names its member.
    @Test func aPaxHeaderOverTheCapStillListsWhatFollows() throws {
        func header(_ name: String, size: Int, type: UInt8) -> [UInt8] {
            var block = [UInt8](repeating: 0, count: 512)
            block.replaceSubrange(0..<name.utf8.count, with: Array(name.utf8))
            func octal(_ value: Int, at: Int, length: Int) {
                let digits = String(value, radix: 8)
                let field = String(repeating: "0", count: length - 1 - digits.count) + digits
                block.replaceSubrange(at..<(at + length - 1), with: Array(field.utf8))
            }
            octal(0o644, at: 100, length: 8)
            octal(size, at: 124, length: 12)
            block[156] = type
            block.replaceSubrange(257..<265, with: Array("ustar\u{0}00".utf8))
            for index in 148..<156 { block[index] = 32 }
            octal(block.reduce(0) { $0 + Int($1) }, at: 148, length: 7)
            return block
        }
        func padded(_ data: [UInt8]) -> [UInt8] { data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512) }
        func record(_ key: String, _ value: String) -> [UInt8] {
            let body = " \(key)=\(value)\n"
            var length = body.utf8.count + 1
            while String(length).utf8.count + body.utf8.count != length { length += 1 }
            return Array((String(length) + body).utf8)
        }
        let pax =
            record("path", "from/the/pax/header.jpg") + record("comment", String(repeating: "a", count: 1_500_000))
        let archive =
            header("PaxHeaders/0", size: pax.count, type: UInt8(ascii: "x")) + padded(pax)
            + header("cut-name.jpg", size: 5, type: UInt8(ascii: "0")) + padded(Array("hello".utf8))
            + header("after.jpg", size: 3, type: UInt8(ascii: "0")) + padded(Array("abc".utf8))
            + [UInt8](repeating: 0, count: 1024)
        let index = archive.withUnsafeBytes { TarIndex(bytes: $0) }
        #expect(index.problem == nil)
        #expect(index.names == ["from/the/pax/header.jpg", "after.jpg"])
        #expect(index.members["after.jpg"].map { Array(archive[$0]) } == Array("abc".utf8))
    }

    @Test(arguments: ["-r", "-r0"])
    func zipMembersStoredOrDeflatedAreRead(_ options: String) throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let zip = try Self.archive(root, "batch.zip", "zip -q \(options)", ["."])
        let reader = ImageReader()
        let listing = try reader.members(ofArchive: zip)
        #expect(listing.names.contains("nested/deeper/b.JPG") && listing.names.contains("nested/a.txt"))
        #expect(!listing.names.contains { $0.hasSuffix("/") }, "folders are not members")
        for member in ["top.jpg", "nested/a.png", Self.longName] {
            let bytes = try reader.bytes(of: "zip:\(zip)!/\(member)")
            #expect(Data(bytes) == FileManager.default.contents(atPath: root.path + "/tree/" + member))
        }
    }

    @Test func aTruncatedTarKeepsTheMembersBeforeTheCut() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let tar = try Self.archive(root, "cut.tar", "tar -b 1 -cf", ["top.jpg", "nested", "zz-last.png"])
        let whole = try Data(contentsOf: URL(fileURLWithPath: tar))
        try whole.prefix(whole.count - 50_000).write(to: URL(fileURLWithPath: tar))  // into the last member
        let listing = try ImageReader().members(ofArchive: tar)
        #expect(listing.problem == "truncated in member zz-last.png", "\(String(describing: listing.problem))")
        #expect(listing.names.contains("top.jpg") && !listing.names.contains("zz-last.png"))
        #expect(try ImageReader().bytes(of: "tar:\(tar)!/nested/a.png").count > 0)
        #expect {
            try ImageReader().bytes(of: "tar:\(tar)!/zz-last.png")
        } throws: { "\($0)".contains("truncated in member zz-last.png") }
    }

    /// A compressed tar (`.tar.gz`, `.tar.zst`) cannot be read in place: it is named for what it is, not reported
    /// as a damaged header, and a member read from it fails with that reason.
    @Test func aCompressedTarIsNamedAsSuch() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        var files: [(String, String)] = []
        for members in [["top.jpg", "nested"], ["meta.json"]] {  // the second compresses to under 512 bytes
            let tar = try Self.archive(root, "plain.tar", "tar -cf", members)
            let gzipped = root.appendingPathComponent("shard-\(members.count).tar.gz").path
            let result = try ProcessResult.run(
                URL(fileURLWithPath: "/bin/sh"), ["-c", "gzip -c '\(tar)' > '\(gzipped)'"])
            #expect(result.status == 0, "\(result.output)")
            files.append(("gzip", gzipped))
        }
        // The others by their magic numbers, followed by what a compressor might write.
        var noise = SplitMix64(seed: 9)
        for (name, magic) in [
            ("bzip2", Array("BZh9".utf8)), ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]),
            ("zstd", [0x28, 0xB5, 0x2F, 0xFD]),
        ] as [(String, [UInt8])] {
            let path = root.appendingPathComponent("shard.tar.\(name)").path
            try Data(magic + (0..<4000).map { _ in UInt8(truncatingIfNeeded: noise.next()) }).write(
                to: URL(fileURLWithPath: path))
            files.append((name, path))
        }
        for (name, path) in files {
            let listing = try ImageReader().members(ofArchive: path)
            #expect(listing.names.isEmpty)
            #expect(listing.problem?.contains("a \(name)-compressed file, not a tar archive") == true, "\(listing)")
            #expect {
                try ImageReader().bytes(of: "tar:\(path)!/top.jpg")
            } throws: { "\($0)".contains("\(name)-compressed") }
        }
    }

    @Test func aTruncatedZipIsRefusedWithTheReason() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let zip = try Self.archive(root, "cut.zip", "zip -q -r", ["."])
        let whole = try Data(contentsOf: URL(fileURLWithPath: zip))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: zip))
        #expect {
            try ImageReader().bytes(of: "zip:\(zip)!/top.jpg")
        } throws: { "\($0)".contains("end-of-central-directory") }
    }

    @Test func aDamagedDeflatedMemberIsRefusedWithTheReason() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let zip = try Self.archive(root, "bad.zip", "zip -q -r", ["captions.txt", "nested"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: zip)))
        // The first member's data starts after its 30-byte local header, name and extra field; scramble some of it.
        let start = 30 + (Int(bytes[26]) | Int(bytes[27]) << 8) + (Int(bytes[28]) | Int(bytes[29]) << 8)
        for index in (start + 8)..<(start + 24) { bytes[index] ^= 0x5A }
        try Data(bytes).write(to: URL(fileURLWithPath: zip))
        let first = try ImageReader().members(ofArchive: zip).names.first!
        #expect {
            try ImageReader().bytes(of: "zip:\(zip)!/\(first)")
        } throws: { "\($0)".contains("damaged") }
    }

    /// A stored member whose central directory declares fewer bytes than it stores (under the limit, where the
    /// stored data is not) is refused, not read whole.
    @Test func aStoredMemberWhoseSizesDisagreeIsRefused() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let zip = try Self.archive(root, "sizes.zip", "zip -q -r0", ["top.jpg"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: zip)))
        let central = (0..<(bytes.count - 4)).first {
            bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4B && bytes[$0 + 2] == 1 && bytes[$0 + 3] == 2
        }!
        bytes.replaceSubrange((central + 24)..<(central + 28), with: [16, 0, 0, 0])  // its uncompressed size
        try Data(bytes).write(to: URL(fileURLWithPath: zip))
        #expect {
            try ImageReader().bytes(of: "zip:\(zip)!/top.jpg")
        } throws: { "\($0)".contains("sizes disagree") }
    }

    /// A zip URI whose archive is a link to a file without the .zip name (a content-addressed store) is read as a
    /// zip: the kind is the URI's, not the name where the link leads.
    @Test func aZipReachedThroughALinkIsReadAsAZip() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let zip = try Self.archive(root, "ab12cd.blob", "zip -q -r", ["top.jpg"])
        let link = root.appendingPathComponent("batch.zip").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: zip)
        let bytes = try ImageReader().bytes(of: "zip:\(link)!/top.jpg")
        #expect(Data(bytes) == FileManager.default.contents(atPath: root.path + "/tree/top.jpg"))
    }

    /// An archive replaced by another of the same size and modification time (a rename, `rsync -a`) is read anew,
    /// not from the index and mapping of the one it replaced.
    @Test func anArchiveReplacedWithTheSameSizeAndTimeIsReadAnew() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try Self.archive(root, "shard.tar", "tar -cf", ["nested/a.png"])
        let image = root.appendingPathComponent("tree/nested/a.png")
        var changed = [UInt8](try Data(contentsOf: image))
        changed[changed.count - 20] ^= 0xFF  // same size, other bytes
        try Data(changed).write(to: image)
        let second = try Self.archive(root, "next.tar", "tar -cf", ["nested/a.png"])
        let reader = ImageReader()
        let before = try reader.bytes(of: "tar:\(first)!/nested/a.png")
        // The same modification time to the nanosecond, as `rsync -a` keeps it.
        let touched = try ProcessResult.run(URL(fileURLWithPath: "/usr/bin/touch"), ["-r", first, second])
        #expect(touched.status == 0, "\(touched.output)")
        var old = stat(), new = stat()
        #expect(stat(first, &old) == 0 && stat(second, &new) == 0)
        #expect(old.st_size == new.st_size && old.st_mtim.tv_sec == new.st_mtim.tv_sec)
        #expect(old.st_mtim.tv_nsec == new.st_mtim.tv_nsec)
        #expect(rename(second, first) == 0)
        let after = try reader.bytes(of: "tar:\(first)!/nested/a.png")
        #expect(after == changed && before != changed)
    }

    @Test func listingTakesImageMembersAndCountsTheRest() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let tar = try Self.archive(root, "s-000.tar", "tar -cf", ["top.jpg", "nested", "meta.json"])
        _ = try Self.archive(root, "s-001.tar", "tar -cf", ["top.jpg"])
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.archives = [root.path + "/s-*.tar"]
        var report = ImageListing.Report()
        let listed = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(listed.count == 4)
        #expect(listed.contains { $0.uri == "tar:\(tar)!/nested/deeper/b.JPG" })
        #expect(report.skippedMembers == 2, "a.txt and meta.json")  // zz-last.png and captions.txt are not in it
        request.archives = [root.path + "/none-*.tar"]
        #expect(throws: ImageSourceError.self) {
            try ImageListing.collect(request, reader: ImageReader(), report: &report)
        }
        // Braces: every name they stand for must be there; a file whose name holds braces is taken as it is.
        request.archives = [root.path + "/s-{000..001}.tar"]
        #expect(try ImageListing.collect(request, reader: ImageReader(), report: &report).count == 4)
        request.archives = [root.path + "/s-{000..002}.tar"]
        #expect {
            try ImageListing.collect(request, reader: ImageReader(), report: &report)
        } throws: { "\($0)".hasPrefix(root.path + "/s-002.tar: no archive matches") }
        _ = try Self.archive(root, "b-{1,2}.tar", "tar -cf", ["top.jpg"])
        request.archives = [root.path + "/b-{1,2}.tar"]
        #expect(
            try ImageListing.collect(request, reader: ImageReader(), report: &report).map(\.uri) == [
                "tar:\(root.path)/b-{1,2}.tar!/top.jpg"
            ])
    }

    /// A member whose pax path holds a NUL character (which PostgreSQL cannot store) is reported and left out; the
    /// members after it are listed.
    @Test func aMemberNoTaskCanHoldIsLeftOutWithTheReason() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let tar = try Self.archive(root, "nul.tar", "tar --format=pax -cf", [Self.longName, "nested/a.png"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tar)))
        // The long name's pax record, rewritten in place: "path=a-very..." becomes "path=a\0very...".
        let record = Array("path=a-very".utf8)
        let at = try #require(
            (0..<(bytes.count - record.count)).first { Array(bytes[$0..<($0 + record.count)]) == record })
        bytes[at + 6] = 0
        try Data(bytes).write(to: URL(fileURLWithPath: tar))
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.archives = [tar]
        var report = ImageListing.Report()
        let listed = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(listed.map(\.uri) == ["tar:\(tar)!/nested/a.png"])
        #expect(report.damagedArchives.count == 1 && report.damagedArchives[0].contains("a NUL character"))
    }

    /// An archive list: one archive a line (LF or CRLF), blank lines and comments skipped, relative paths from the
    /// list's folder, URLs and patterns as written; then listed as `--archive` lists them.
    @Test func anArchiveListNamesArchivesAsArchiveArgumentsDo() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let tar = try Self.archive(root, "shards/s-0.tar", "mkdir -p ../shards && tar -cf", ["top.jpg", "nested"])
        let list = root.appendingPathComponent("list.txt")
        try Data(
            "# shards\r\nshards/s-{0..0}.tar\r\n\r\n  https://h.example/x/{00..01}.tar  \n\(tar)\n".utf8
        ).write(to: list)
        let patterns = try ImageListing.archivePatterns(fromList: list.path)
        #expect(
            patterns == [root.path + "/shards/s-{0..0}.tar", "https://h.example/x/{00..01}.tar", tar], "\(patterns)")
        var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
        request.archives = [patterns[0], patterns[2]]
        var report = ImageListing.Report()
        let listed = try ImageListing.collect(request, reader: ImageReader(), report: &report)
        #expect(listed.count == 3, "each archive's three images once: \(listed.map(\.uri))")
        #expect(throws: ImageSourceError.self) {
            try ImageListing.archivePatterns(fromList: root.appendingPathComponent("missing.txt").path)
        }
    }

    @Test func damagedHeadersStopIndexingWithoutCrashing() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let tar = try Self.archive(root, "odd.tar", "tar -cf", ["top.jpg", "nested"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tar)))
        // The first header's size field as GNU base-256 with a value near Int.max: must not overflow.
        bytes[124] = 0x80
        for index in 125..<128 { bytes[index] = 0 }
        bytes[128] = 0x7F
        for index in 129..<136 { bytes[index] = 0xFF }
        var sum = 0
        for index in 0..<512 { sum += (148..<156).contains(index) ? 32 : Int(bytes[index]) }
        let checksum = Array(String(sum, radix: 8).utf8)
        for index in 148..<156 { bytes[index] = 0 }
        for (offset, digit) in checksum.enumerated() { bytes[148 + 6 - checksum.count + offset] = digit }
        for index in 148..<(148 + 6 - checksum.count) { bytes[index] = UInt8(ascii: "0") }
        bytes[154] = 0
        bytes[155] = UInt8(ascii: " ")
        try Data(bytes).write(to: URL(fileURLWithPath: tar))
        let listing = try ImageReader().members(ofArchive: tar)
        #expect(
            listing.names.isEmpty && listing.problem?.contains("damaged") == true,
            "\(String(describing: listing.problem))")
    }

    /// A damaged zip among a few archives is refused before anything is listed; among more archives than a reader
    /// keeps indexed, each is only opened up front (indexing them all twice would double the work), and the damaged
    /// one stops the listing where it comes.
    @Test func aDamagedArchiveIsRefusedUpFrontOrWhereItComes() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(at: root) }
        let tar = try Self.archive(root, "shards/0000.tar", "mkdir -p ../shards && tar -cf", ["top.jpg"])
        let bad = root.appendingPathComponent("shards/zz-bad.zip").path
        try Data("not a zip at all".utf8).write(to: URL(fileURLWithPath: bad))
        func listed(_ archives: [String]) -> (count: Int, error: (any Error)?) {
            var request = ImageListing.Request(takesText: false, textName: "question", sharedText: "")
            request.archives = archives
            var report = ImageListing.Report()
            var count = 0
            do {
                try ImageListing.forEach(request, reader: ImageReader(), report: &report) { _ in count += 1 }
                return (count, nil)
            } catch {
                return (count, error)
            }
        }
        let few = listed([tar, bad])
        #expect(few.count == 0 && "\(few.error.map { "\($0)" } ?? "")".contains(bad))
        let kept = ImageReader().archivesKept
        for index in 1...kept {
            try FileManager.default.copyItem(
                atPath: tar, toPath: root.appendingPathComponent("shards/\(String(format: "%04d", index)).tar").path)
        }
        let many = listed([root.appendingPathComponent("shards").path + "/*.tar", bad])
        #expect(many.count == kept + 1, "every tar's member before the damaged zip")
        #expect("\(many.error.map { "\($0)" } ?? "")".contains(bad))
    }
}
