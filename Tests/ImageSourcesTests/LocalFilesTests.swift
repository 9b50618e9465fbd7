// Local files a task names are read only as the worker allows: under its image roots after resolving links, regular
// files only (a FIFO fails at once instead of blocking), nothing from /proc or /sys, and sized before reading.

import Foundation
import ImageSources
import TestSupport
import Testing

@Suite struct LocalFilesTests {
    static let image = RepositoryFiles.path("Tests/ImagingTests/Fixtures/images/rgb_64x64.png")

    /// A scratch folder with `inside/` (the root) holding a good image, and `outside/` holding a secret.
    static func scratch() throws -> (root: URL, inside: URL, outside: URL) {
        let root = ScratchFolders.url("infmllm-files")
        let inside = root.appendingPathComponent("inside"), outside = root.appendingPathComponent("outside")
        for folder in [inside, outside] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: image, toPath: inside.appendingPathComponent("good.png").path)
        try Data("root:x:0:0:root:/root:/bin/bash\n".utf8).write(to: outside.appendingPathComponent("secret"))
        return (root, inside, outside)
    }

    /// Runs `body` on a thread and returns its error, or fails the test when it has not returned within `bound`
    /// seconds (a read that blocks).
    static func failure(within bound: Double = 20, _ body: @escaping @Sendable () throws -> Void) -> String? {
        let done = DispatchSemaphore(value: 0)
        let box = ErrorBox()
        Thread.detachNewThread {
            do { try body() } catch { box.set("\(error)") }
            done.signal()
        }
        guard done.wait(timeout: .now() + bound) == .success else {
            Issue.record("the read did not return within \(bound) s")
            return nil
        }
        return box.get()
    }

    @Test func aFIFOFailsAtOnceInsteadOfBlocking() throws {
        let (root, inside, _) = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let fifo = inside.appendingPathComponent("pipe.jpg").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let reader = ImageReader()
        let reason = Self.failure { _ = try reader.bytes(of: fifo) }
        #expect(reason?.contains("not a regular file (a FIFO)") == true, "\(reason ?? "")")
        // An archive that is a FIFO blocks no more than a file does.
        let tarFIFO = inside.appendingPathComponent("pipe.tar").path
        #expect(mkfifo(tarFIFO, 0o600) == 0)
        let archiveReason = Self.failure { _ = try reader.bytes(of: "tar:\(tarFIFO)!/a.png") }
        #expect(archiveReason?.contains("not a regular file (a FIFO)") == true, "\(archiveReason ?? "")")
    }

    @Test func devicesDirectoriesAndKernelFilesAreRefused() throws {
        let reader = ImageReader()
        for (path, expected) in [
            ("/dev/zero", "a file of the kernel's /proc, /sys or /dev"), ("/tmp", "not a regular file (a directory)"),
            ("/proc/self/environ", "a file of the kernel's /proc, /sys or /dev"),
            ("/proc/self/cmdline", "a file of the kernel's /proc, /sys or /dev"),
        ] {
            let reason = Self.failure { _ = try reader.bytes(of: path) }
            #expect(reason?.contains(expected) == true, "\(path): \(reason ?? "")")
        }
    }

    @Test func onlyFilesUnderTheRootsAreReadAfterResolvingLinks() throws {
        let (root, inside, outside) = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let reader = ImageReader(files: try LocalFiles(roots: [inside.path]))
        let good = inside.appendingPathComponent("good.png").path
        #expect(try reader.bytes(of: good) == [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.image))))
        // A link inside the roots to a file inside them is followed.
        let innerLink = inside.appendingPathComponent("again.png").path
        try FileManager.default.createSymbolicLink(atPath: innerLink, withDestinationPath: good)
        #expect(try reader.bytes(of: innerLink).count > 0)

        let secret = outside.appendingPathComponent("secret").path
        let escape = inside.appendingPathComponent("escape.png").path
        try FileManager.default.createSymbolicLink(atPath: escape, withDestinationPath: secret)
        let dotted = inside.path + "/../outside/secret"
        let linkedDirectory = inside.appendingPathComponent("up").path
        try FileManager.default.createSymbolicLink(atPath: linkedDirectory, withDestinationPath: root.path)
        for path in [
            secret, escape, dotted, linkedDirectory + "/outside/secret", "file://" + escape, "/etc/passwd",
            "tar:\(escape)!/a.png", "zip:\(secret)!/a.png",
            // A missing file outside the roots gets the same answer as one that exists: no way to probe for files.
            outside.path + "/missing.png",
        ] {
            #expect(throws: ImageSourceError.self, "\(path)") { try reader.bytes(of: path) }
            do {
                _ = try reader.bytes(of: path)
            } catch {
                #expect("\(error)".contains("outside the worker's image roots"), "\(path): \(error)")
                #expect(!"\(error)".contains("root:x"))
            }
        }
        // The roots themselves are resolved: naming the root through a link still admits its files.
        let rootLink = root.appendingPathComponent("root-link").path
        try FileManager.default.createSymbolicLink(atPath: rootLink, withDestinationPath: inside.path)
        let throughLink = ImageReader(files: try LocalFiles(roots: [rootLink]))
        #expect(try throughLink.bytes(of: good).count > 0)
        #expect(throws: ImageSourceError.self) { try LocalFiles(roots: [root.appendingPathComponent("none").path]) }
    }

    @Test func theSizeIsCheckedBeforeReadingAndEmptyFilesFail() throws {
        let (root, inside, _) = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let big = inside.appendingPathComponent("big.png")
        try Data(repeating: 1, count: 3 << 20).write(to: big)
        let empty = inside.appendingPathComponent("empty.png")
        try Data().write(to: empty)
        let reader = ImageReader(maxBytes: 1 << 20)
        #expect { try reader.bytes(of: big.path) } throws: { "\($0)".contains("3145728 bytes, over the 1048576") }
        #expect { try reader.bytes(of: empty.path) } throws: { "\($0)".contains("an empty file") }
        #expect { try reader.bytes(of: inside.path + "/missing.png") } throws: { "\($0)".contains("no such file") }
    }
}

/// An error message set on one thread and read on another after a semaphore.
final class ErrorBox: @unchecked Sendable {
    // Invariant: `value` is only read and written while holding `lock`.
    private let lock = NSLock()
    private var value: String?
    func set(_ text: String) { lock.withLock { value = text } }
    func get() -> String? { lock.withLock { value } }
}
