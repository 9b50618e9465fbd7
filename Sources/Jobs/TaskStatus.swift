// The life of one task, as stored in `tasks.status`.

/// Where a task stands. Raw values are the ones stored in `tasks.status`.
public enum TaskStatus: String, Sendable, Codable, CaseIterable {
    /// Enqueued and waiting for a worker.
    case queued
    /// Taken by a worker that has not yet committed a result.
    case running
    /// A result was committed.
    case done
    /// Ended without a result; `tasks.last_error` says why.
    case failed
    /// Its job was cancelled before a worker took it.
    case cancelled

    /// Whether the task has ended, so that no worker will touch it again unless it is retried.
    public var isFinal: Bool {
        switch self {
        case .queued, .running: false
        case .done, .failed, .cancelled: true
        }
    }
}
