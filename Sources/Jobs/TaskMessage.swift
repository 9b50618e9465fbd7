// The body of one task message on the queue: a versioned JSON object naming a job and some of its tasks (one
// image's tasks travel together, so that one worker computes the image once); PostgreSQL holds the rest.

import Foundation

/// What a worker receives: tasks of one job, by id. Everything else (image, text, job settings) is read from the
/// database, so the message stays small and a retried task always runs with its current row.
public struct TaskMessage: Sendable, Equatable {
    /// The message format version this build writes; version 1 (one task, `task_id`) is still read.
    public static let currentVersion = 2
    /// Larger bodies are refused unread: a message is a few hundred bytes at most.
    public static let maxBodySize = 4096
    /// Tasks in one message at most: an image's tasks beyond this travel in further messages.
    public static let maxTasks = 64

    public var version: Int
    public var jobID: Int64
    /// In the order they were enqueued; never empty, no repeats.
    public var taskIDs: [Int64]

    public init(jobID: Int64, taskIDs: [Int64]) {
        version = Self.currentVersion
        self.jobID = jobID
        self.taskIDs = taskIDs
    }

    public func encoded() -> [UInt8] {
        Array(
            #"{"v":\#(version),"job_id":\#(jobID),"task_ids":[\#(taskIDs.map(String.init).joined(separator: ","))]}"#
                .utf8)
    }

    /// A task to put on the queue, with the image that groups it with others and its job's lane.
    public struct Task: Sendable, Equatable {
        public var taskID: Int64
        public var jobID: Int64
        public var imageURI: String
        public var priority: TaskPriority

        public init(taskID: Int64, jobID: Int64, imageURI: String, priority: TaskPriority = .normal) {
            self.taskID = taskID
            self.jobID = jobID
            self.imageURI = imageURI
            self.priority = priority
        }
    }

    /// The messages that carry `tasks`: the tasks of one job and image together, in order of first appearance,
    /// at most `maxTasks` a message.
    public static func grouping(_ tasks: [Task]) -> [TaskMessage] {
        struct Key: Hashable {
            let jobID: Int64
            let imageURI: String
        }
        var order: [Key] = []
        var groups: [Key: [Int64]] = [:]
        for task in tasks {
            let key = Key(jobID: task.jobID, imageURI: task.imageURI)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(task.taskID)
        }
        return order.flatMap { key in
            let ids = groups[key]!
            return stride(from: 0, to: ids.count, by: maxTasks).map {
                TaskMessage(jobID: key.jobID, taskIDs: Array(ids[$0..<min($0 + maxTasks, ids.count)]))
            }
        }
    }

    /// Parses a message body, refusing oversized, malformed and unknown-version messages with the reason.
    public static func decode(_ body: [UInt8]) throws -> TaskMessage {
        guard body.count <= maxBodySize else { throw TaskMessageError.oversized(bytes: body.count, limit: maxBodySize) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw TaskMessageError.malformed(reason: "not a JSON object", preview: preview(body))
        }
        guard let version = object["v"] as? Int else {
            throw TaskMessageError.malformed(reason: "no version field \"v\"", preview: preview(body))
        }
        guard let job = positive(object["job_id"]) else {
            throw TaskMessageError.malformed(reason: "job_id must be a positive integer", preview: preview(body))
        }
        switch version {
        case 1:
            guard let task = positive(object["task_id"]) else {
                throw TaskMessageError.malformed(reason: "task_id must be a positive integer", preview: preview(body))
            }
            return TaskMessage(jobID: job, taskIDs: [task])
        case currentVersion:
            guard let values = object["task_ids"] as? [Any], !values.isEmpty, values.count <= maxTasks else {
                throw TaskMessageError.malformed(
                    reason: "task_ids must be a list of 1 to \(maxTasks) task ids", preview: preview(body))
            }
            let ids = values.compactMap(positive)
            guard ids.count == values.count, Set(ids).count == ids.count else {
                throw TaskMessageError.malformed(
                    reason: "task_ids must be distinct positive integers", preview: preview(body))
            }
            return TaskMessage(jobID: job, taskIDs: ids)
        default:
            throw TaskMessageError.unknownVersion(version)
        }
    }

    private static func positive(_ value: Any?) -> Int64? {
        guard let id = value as? Int, id > 0 else { return nil }
        return Int64(id)
    }

    private static func preview(_ body: [UInt8]) -> String {
        String(decoding: body.prefix(80), as: UTF8.self)
    }
}

/// A queue message that cannot be a task: it is parked with this reason.
public enum TaskMessageError: Error, CustomStringConvertible, Sendable, Equatable {
    case oversized(bytes: Int, limit: Int)
    case malformed(reason: String, preview: String)
    case unknownVersion(Int)

    public var description: String {
        switch self {
        case let .oversized(bytes, limit): "message of \(bytes) bytes exceeds the \(limit)-byte limit"
        case let .malformed(reason, preview): "malformed task message (\(reason)): \(preview)"
        case let .unknownVersion(version):
            "task message version \(version) is not one this worker reads (1 or \(TaskMessage.currentVersion))"
        }
    }
}
