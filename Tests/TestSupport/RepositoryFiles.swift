// Paths of files in this repository and of the built `infmllm` binary, for tests that use them.

import Foundation

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
public struct ProcessResult {
    public let status: Int32
    public let output: String

    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws
        -> ProcessResult
    {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = RepositoryFiles.root
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}
