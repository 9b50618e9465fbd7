// The visual-embedding cache on disk: entries found again bit for bit, damaged and truncated ones detected and
// removed, the least recently used evicted to the size, and several writers on one directory.

import Foundation
import Generation
import Testing

@testable import Worker

@Suite struct DiskEmbeddingCacheTests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vt-\(UUID().uuidString)").path
    }

    static func key(_ name: String) -> String { VisualEmbeddingCacheKey.make(imageSHA256: name, fingerprint: "m") }

    static let values: [Float] = (0..<1000).map { Float($0) * 0.37 - 11 } + [.infinity, -0.0, .leastNonzeroMagnitude]

    @Test func storedTokensComeBackBitForBit() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let cache = try DiskEmbeddingCache(directory: path, maxBytes: 1 << 20)
        #expect(cache.tokens(for: Self.key("a"), count: Self.values.count) == nil)
        cache.store(Self.values, for: Self.key("a"))
        let read = cache.tokens(for: Self.key("a"), count: Self.values.count)
        #expect(read?.map(\.bitPattern) == Self.values.map(\.bitPattern))
        // A second process on the same directory sees it.
        let other = try DiskEmbeddingCache(directory: path, maxBytes: 1 << 20)
        #expect(other.tokens(for: Self.key("a"), count: Self.values.count) != nil)
        #expect(cache.tokens(for: Self.key("a"), count: 5) == nil, "an entry of another size is a miss")
    }

    @Test(arguments: ["truncated", "flipped", "foreign"])
    func aDamagedEntryIsAMissAndIsRemoved(_ damage: String) throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let cache = try DiskEmbeddingCache(directory: path, maxBytes: 1 << 20)
        cache.store(Self.values, for: Self.key("a"))
        let file = path + "/" + Self.key("a") + ".vt"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        switch damage {
        case "truncated": bytes = bytes.prefix(bytes.count - 7)
        case "flipped": bytes[bytes.count - 100] ^= 0x40
        default: bytes.replaceSubrange(16..<80, with: Data(Self.key("b").utf8))
        }
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect(cache.tokens(for: Self.key("a"), count: Self.values.count) == nil)
        #expect(!FileManager.default.fileExists(atPath: file), "removed, to be computed and stored again")
    }

    @Test func theLeastRecentlyUsedEntriesAreEvictedToTheSize() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let entry = 112 + Self.values.count * 4
        let cache = try DiskEmbeddingCache(directory: path, maxBytes: entry * 3 + 10)
        for name in ["a", "b", "c"] { cache.store(Self.values, for: Self.key(name)) }
        // Use "a" (its time moves on), so that "b" is the oldest.
        let past = Date(timeIntervalSinceNow: -100)
        for name in ["a", "b", "c"] {
            try FileManager.default.setAttributes(
                [.modificationDate: past.addingTimeInterval(name == "b" ? -10 : 0)],
                ofItemAtPath: path + "/" + Self.key(name) + ".vt")
        }
        #expect(cache.tokens(for: Self.key("a"), count: Self.values.count) != nil)
        cache.store(Self.values, for: Self.key("d"))
        #expect(cache.bytes <= entry * 3 + 10)
        #expect(cache.tokens(for: Self.key("b"), count: Self.values.count) == nil, "the oldest went")
        #expect(cache.tokens(for: Self.key("a"), count: Self.values.count) != nil, "a recent use kept it")
        #expect(cache.tokens(for: Self.key("d"), count: Self.values.count) != nil)
    }

    @Test func severalProcessesOnOneDirectoryStayWithinTheSizeTogether() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let entry = 112 + Self.values.count * 4
        let size = entry * 40
        // Four caches (four workers of a host), each writing entries of its own: none alone passes the size.
        let caches = try (0..<4).map { _ in try DiskEmbeddingCache(directory: path, maxBytes: size) }
        for index in 0..<30 {
            for (number, cache) in caches.enumerated() { cache.store(Self.values, for: Self.key("\(number)-\(index)")) }
        }
        #expect(caches[0].bytes <= size + 4 * (size / 20 + entry), "\(caches[0].bytes) bytes for a size of \(size)")
    }

    @Test func temporaryFilesOfWritersThatDiedAreRemoved() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let abandoned = path + "/." + Self.key("a") + ".4242.17.tmp",
            fresh = path + "/." + Self.key("b") + ".4243.18.tmp"
        for file in [abandoned, fresh] { try Data(count: 100).write(to: URL(fileURLWithPath: file)) }
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -DiskEmbeddingCache.abandonedAfter - 60)],
            ofItemAtPath: abandoned)
        _ = try DiskEmbeddingCache(directory: path, maxBytes: 1 << 20)
        #expect(!FileManager.default.fileExists(atPath: abandoned), "left by a writer that died")
        #expect(FileManager.default.fileExists(atPath: fresh), "perhaps being written now")
    }

    @Test func concurrentWritersLeaveWholeEntries() throws {
        let path = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let caches = try (0..<4).map { _ in try DiskEmbeddingCache(directory: path, maxBytes: 1 << 26) }
        DispatchQueue.concurrentPerform(iterations: 64) { index in
            let values = Self.values.map { $0 + Float(index % 8) }
            caches[index % 4].store(values, for: Self.key("image-\(index % 8)"))
            if let read = caches[(index + 1) % 4].tokens(for: Self.key("image-\(index % 8)"), count: values.count) {
                #expect(read.map(\.bitPattern) == values.map(\.bitPattern))
            }
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
        #expect(names.count == 8 && names.allSatisfy { $0.hasSuffix(".vt") }, "no temporary file left: \(names)")
    }
}
