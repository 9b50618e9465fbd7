// A job's priority: which of its model's queue lanes its tasks travel in. Workers take a lower lane's tasks only while
// the higher lanes have none ready.

/// The queue lane of a job's tasks, highest first.
public enum TaskPriority: String, Sendable, CaseIterable, Codable, Comparable {
    case high, normal, low

    /// Higher lanes first: high, normal, low.
    public static let lanes: [TaskPriority] = [.high, .normal, .low]

    public static func < (lhs: TaskPriority, rhs: TaskPriority) -> Bool {
        lanes.firstIndex(of: lhs)! > lanes.firstIndex(of: rhs)!
    }
}
