// The body of one task message on the queue: a versioned JSON object naming the task; PostgreSQL holds the rest.

import Foundation

/// What a worker receives for one task. Everything else (image, text, job settings) is read from the database,
/// so the message stays small and a retried task always runs with its current row.
public struct TaskMessage: Sendable, Equatable, Codable {
    /// The message format version this build writes and reads.
    public static let currentVersion = 1
    /// Larger bodies are refused unread: a task message is a few dozen bytes.
    public static let maxBodySize = 4096

    public var version: Int
    public var taskID: Int64
    public var jobID: Int64

    enum CodingKeys: String, CodingKey {
        case version = "v", taskID = "task_id", jobID = "job_id"
    }

    public init(taskID: Int64, jobID: Int64) {
        version = Self.currentVersion
        self.taskID = taskID
        self.jobID = jobID
    }

    public func encoded() -> [UInt8] {
        Array(#"{"v":\#(version),"task_id":\#(taskID),"job_id":\#(jobID)}"#.utf8)
    }

    /// Parses a message body, refusing oversized, malformed and other-version messages with the reason.
    public static func decode(_ body: [UInt8]) throws -> TaskMessage {
        guard body.count <= maxBodySize else { throw TaskMessageError.oversized(bytes: body.count, limit: maxBodySize) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw TaskMessageError.malformed(reason: "not a JSON object", preview: preview(body))
        }
        guard let version = object["v"] as? Int else {
            throw TaskMessageError.malformed(reason: "no version field \"v\"", preview: preview(body))
        }
        guard version == currentVersion else { throw TaskMessageError.unknownVersion(version) }
        guard let task = (object["task_id"] as? NSNumber)?.int64Value,
            let job = (object["job_id"] as? NSNumber)?.int64Value,
            task > 0, job > 0
        else {
            throw TaskMessageError.malformed(
                reason: "task_id and job_id must be positive integers", preview: preview(body))
        }
        return TaskMessage(taskID: task, jobID: job)
    }

    private static func preview(_ body: [UInt8]) -> String {
        String(decoding: body.prefix(80), as: UTF8.self)
    }
}

/// A queue message that cannot be a task: it is dead-lettered with this reason.
public enum TaskMessageError: Error, CustomStringConvertible, Sendable, Equatable {
    case oversized(bytes: Int, limit: Int)
    case malformed(reason: String, preview: String)
    case unknownVersion(Int)

    public var description: String {
        switch self {
        case let .oversized(bytes, limit): "message of \(bytes) bytes exceeds the \(limit)-byte limit"
        case let .malformed(reason, preview): "malformed task message (\(reason)): \(preview)"
        case let .unknownVersion(version): "task message version \(version) is not \(TaskMessage.currentVersion)"
        }
    }
}
