// Naming the files an export writes beside archive shards.

import Testing

@testable import infmllm

@Suite struct ExportShardTests {
    @Test func keysAreMemberPathsWithoutExtensions() {
        #expect(ExportCommand.key(ofMember: "a/b/0001.jpg") == "a/b/0001")
        #expect(ExportCommand.key(ofMember: "0001.seg.png") == "0001")
        #expect(ExportCommand.key(ofMember: "noext") == "noext")
    }

    @Test func keysThatWouldLeaveTheFolderAreRefused() {
        #expect(ExportCommand.isSafe(key: "a/b/0001"))
        for key in ["../x", "a/../../x", "/etc/x", "a//b", "./a", ""] { #expect(!ExportCommand.isSafe(key: key)) }
    }

    @Test func shardsWithOneNameInTwoFoldersGetDistinctOutputs() {
        let names = ExportCommand.shardNames(["/a/s-000.tar", "/b/s-000.tar", "/a/s-001.zip"])
        #expect(names["/a/s-000.tar"] == "s-000" && names["/a/s-001.zip"] == "s-001")
        #expect(names["/b/s-000.tar"]!.hasPrefix("s-000-") && names["/b/s-000.tar"]!.count == "s-000-".count + 8)
    }
}
