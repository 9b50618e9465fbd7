// Naming the files an export writes beside archive shards.

import Foundation
import Testing

@testable import infmllm

@Suite struct ExportShardTests {
    /// The names export gives archives whose shards come in their paths' byte order (each path standing for its
    /// shard's URI).
    static func shardNames(_ archives: [String]) -> [String: String] {
        var namer = ShardNamer()
        return Dictionary(
            uniqueKeysWithValues: archives.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map {
                ($0, namer.name(for: Array($0.utf8), archive: $0))
            })
    }

    @Test func keysAreMemberPathsWithoutExtensions() {
        #expect(ExportCommand.key(ofMember: "a/b/0001.jpg") == "a/b/0001")
        #expect(ExportCommand.key(ofMember: "0001.seg.png") == "0001")
        #expect(ExportCommand.key(ofMember: "noext") == "noext")
    }

    @Test func keysThatWouldLeaveTheFolderAreRefused() {
        #expect(ExportCommand.isSafe(key: "a/b/0001"))
        // Members of a shard made with `tar -C images -cf shard.tar .` start with ./, which stays inside.
        #expect(ExportCommand.isSafe(key: "./0001") && ExportCommand.key(ofMember: "./0001.jpg") == "./0001")
        for key in ["../x", "a/../../x", "/etc/x", "a//b", "./../x", ".", "./.", ""] {
            #expect(!ExportCommand.isSafe(key: key), "\(key)")
        }
    }

    @Test func shardsWithOneNameInTwoFoldersGetDistinctOutputs() {
        let names = Self.shardNames(["/a/s-000.tar", "/b/s-000.tar", "/a/s-001.zip"])
        #expect(names["/a/s-000.tar"] == "s-000" && names["/a/s-001.zip"] == "s-001")
        #expect(names["/b/s-000.tar"]!.hasPrefix("s-000-") && names["/b/s-000.tar"]!.count == "s-000-".count + 8)
    }

    /// An archive path comes from a task, which a client wrote: its output name is one plain file name, never `..`,
    /// a hidden file, a path or a control character.
    @Test func shardNamesAreSanitised() {
        let archives = ["/data/..", "/data/.", "/x/.hidden.tar", "/y/a\nb c.tar", "/z/.tar", "/w/ok-1_2.tar", "/"]
        let names = Self.shardNames(archives)
        for archive in archives {
            let name = names[archive]!
            #expect(!name.isEmpty && !name.hasPrefix(".") && !name.contains("/"), "\(archive): \(name)")
            #expect(name.allSatisfy { $0.isLetter || $0.isNumber || "._-".contains($0) }, "\(name)")
        }
        #expect(names["/w/ok-1_2.tar"] == "ok-1_2")
        #expect(names["/y/a\nb c.tar"] == "a_b_c")
        #expect(names["/data/.."]!.hasPrefix("shard"))
        let root = URL(fileURLWithPath: "/tmp/out")
        #expect(ExportCommand.isInside(root.appendingPathComponent("s/a.json"), root))
        #expect(!ExportCommand.isInside(root.appendingPathComponent("../a.json"), root))
        #expect(!ExportCommand.isInside(root.appendingPathComponent("s/../../a.json"), root))
    }

    /// `--output` for a one-file format: a directory is refused (never replaced); a file appears only once the
    /// export is complete, replacing the old one in one rename; an export that stops leaves the old file as it was.
    @Test func anExportFileAppearsOnlyWhenComplete() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("keep".utf8).write(to: folder.appendingPathComponent("inside"))
        #expect(throws: ExportError.self) { try ExportSink(path: folder.path) }
        #expect(throws: ExportError.self) { try ExportSink(path: folder.path + "/") }
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("inside").path))

        let file = folder.appendingPathComponent("out.jsonl").path
        try Data("old\n".utf8).write(to: URL(fileURLWithPath: file))
        do {
            let stopped = try ExportSink(path: file)
            try stopped.write("half")
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "old\n")
        #expect(!FileManager.default.fileExists(atPath: file + ".partial"))
        let sink = try ExportSink(path: file)
        try sink.write(String(repeating: "x", count: 3 << 20))
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "old\n", "not in place before finish")
        try sink.write("\n")
        try sink.finish()
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)).count == (3 << 20) + 1)
        #expect(!FileManager.default.fileExists(atPath: file + ".partial"))
    }
}
