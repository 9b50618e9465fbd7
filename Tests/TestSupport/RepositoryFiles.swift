// Paths of files in this repository and of the built `infmllm` binary, for tests that use them.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

public enum RepositoryFiles {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }

    /// The `infmllm` executable built beside the test bundle.
    public static func binary() throws -> URL {
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("infmllm"),
            Bundle.main.bundleURL.appendingPathComponent("infmllm"),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
                "infmllm"),
            root.appendingPathComponent(".build/debug/infmllm"),
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw MissingBinary(searched: candidates.map(\.path))
        }
        return found
    }

    public struct MissingBinary: Error, CustomStringConvertible {
        let searched: [String]
        public var description: String { "no infmllm executable in \(searched)" }
    }
}

/// Runs a program to completion and captures its exit status and output.
///
/// Spawned with posix_spawn and reaped with waitpid, its output collected through a file: Foundation's `Process`
/// can miss the exit of a child that started daemons (the RabbitMQ scripts), and a pipe stays open as long as
/// any daemon inherited it.
public struct ProcessResult {
    public let status: Int32
    public let output: String

    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws
        -> ProcessResult
    {
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("infmllm-process-\(UInt64.random(in: 0...UInt64.max)).out").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The shell changes to the repository root (relative paths such as ./migrations), then becomes the program.
        let command =
            ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", RepositoryFiles.root.path, executable.path] + arguments
        let argv = command.map { strdup($0) } + [nil]
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw SpawnError(message: "cannot run \(executable.path): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7F == 0
        return ProcessResult(status: exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output: output)
    }

    struct SpawnError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
