// Folders tests make under the temporary directory, removed when the test process exits: tests running at once share
// the process, and a model or a job folder may still be read by a child process until its test ends, so nothing is
// removed before then.

import Foundation

public enum ScratchFolders {
    private final class Registry: @unchecked Sendable {
        // Invariant: `paths` is read and written only while holding `lock`.
        let lock = NSLock()
        var paths: [String] = []
        var registered = false
    }

    private static let registry = Registry()

    /// A fresh path `<temporary directory>/<prefix>-<random><suffix>` (not created), removed with what it holds at
    /// exit.
    public static func path(_ prefix: String, suffix: String = "") -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))\(suffix)").path
        registry.lock.withLock {
            registry.paths.append(path)
            if !registry.registered {
                registry.registered = true
                atexit { ScratchFolders.removeAll() }
            }
        }
        return path
    }

    /// The same as a URL.
    public static func url(_ prefix: String) -> URL { URL(fileURLWithPath: path(prefix)) }

    private static func removeAll() {
        let paths = registry.lock.withLock { registry.paths }
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
    }
}
