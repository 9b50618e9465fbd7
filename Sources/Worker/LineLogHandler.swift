// Log lines for people and for log pipelines: plain text, logfmt or JSON on standard error, each with its level and
// the metadata in force (the worker's name, and a task's and job's ids where a line is about one). Every message
// and value passes through `Secrets.redacted` on the way out.

import Foundation
import Jobs
import Logging

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `message key=value ...`, for a terminal.
    case text
    /// `time=... level=info msg="..." key=value ...`.
    case logfmt
    /// One JSON object per line: `time`, `level`, `message` and the metadata.
    case json
}

/// A swift-log handler writing one line per event to standard error.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    public let format: LogFormat

    public init(format: LogFormat, level: Logger.Level = .info) {
        self.format = format
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let message = Secrets.redacted("\(event.message)")
        let values = fields.sorted { $0.key < $1.key }.map { ($0.key, Secrets.redacted("\($0.value)")) }
        FileHandle.standardError.write(Data((Self.line(format, event.level, message, values) + "\n").utf8))
    }

    static func line(_ format: LogFormat, _ level: Logger.Level, _ message: String, _ values: [(String, String)])
        -> String
    {
        switch format {
        case .text:
            return ([message] + values.map { "\($0.0)=\(logfmtValue($0.1))" }).joined(separator: " ")
        case .logfmt:
            let head = ["time=\(timestamp())", "level=\(level.rawValue)", "msg=\(logfmtValue(message))"]
            return (head + values.map { "\($0.0)=\(logfmtValue($0.1))" }).joined(separator: " ")
        case .json:
            var object: [String: String] = ["time": timestamp(), "level": level.rawValue, "message": message]
            for (key, value) in values where object[key] == nil { object[key] = value }
            let data =
                (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// A logfmt value: bare when it has no space, quote or `=`, quoted with escapes otherwise.
    static func logfmtValue(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline })
        else { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return "\"" + escaped + "\""
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
