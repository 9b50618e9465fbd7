// The weights' SHA-256 that results record: the bytes of every weight file in name order, as `sha256sum` sees them,
// computed once and then read from a cache keyed by each file's size and modification time.

import Foundation
import Models
import TestSupport
import Testing

@Suite struct WeightsDigestTests {
    /// A private copy of a fixture directory, so the cache lands beside it.
    static func copy(_ fixture: String) throws -> String {
        let directory = ScratchFolders.path("infmllm-digest")
        try FileManager.default.copyItem(atPath: EngineFixtures.modelDirectory(fixture), toPath: directory)
        return directory
    }

    /// `cat FILES | sha256sum`.
    static func sha256sum(_ files: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "cat \"$@\" | sha256sum", "sh"] + files
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: output, as: UTF8.self).prefix(64))
    }

    @Test func shardsAreHashedInNameOrderAsSha256sumDoes() throws {
        let directory = try Self.copy("multitask-sharded")
        let expected = try Self.sha256sum([
            directory + "/model-00001-of-00002.safetensors", directory + "/model-00002-of-00002.safetensors",
        ])
        #expect(try CheckpointFiles.weightsSHA256(directory: directory) == expected)
        let single = try Self.copy("chat-hf")
        #expect(
            try CheckpointFiles.weightsSHA256(directory: single)
                == Self.sha256sum([
                    single + "/pytorch_model-00001-of-00002.bin", single + "/pytorch_model-00002-of-00002.bin",
                ]))
    }

    @Test func theCacheIsUsedUntilAFileChanges() throws {
        let directory = try Self.copy("multitask")
        let real = try CheckpointFiles.weightsSHA256(directory: directory)
        let cache = directory + "/.infmllm-weights-sha256.json"
        #expect(FileManager.default.fileExists(atPath: cache))
        // A cache entry for unchanged files is believed (so a 15 GB model is hashed once)...
        let text = try String(contentsOfFile: cache, encoding: .utf8)
        try text.replacingOccurrences(of: real, with: String(repeating: "0", count: 64)).write(
            toFile: cache, atomically: true, encoding: .utf8)
        #expect(try CheckpointFiles.weightsSHA256(directory: directory) == String(repeating: "0", count: 64))
        // ...and dropped when a file's modification time changes.
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: directory + "/model.safetensors")
        #expect(try CheckpointFiles.weightsSHA256(directory: directory) == real)
    }
}
