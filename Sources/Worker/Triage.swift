// The worker's first look at a message's tasks: from the message and the tasks' rows alone, what becomes of each
// (nothing, cancelled, failed for good, sent to another queue, or run, alone when it may crash workers). Pure.

import Jobs

/// What becomes of one task a message names.
enum TaskDecision: Equatable, Sendable {
    /// Nothing is left to do: it is finished, or its job is gone.
    case settled
    /// Its job was cancelled.
    case cancel
    /// The broker gave up on it and the model started on it each time: it fails with this reason.
    case fail(String)
    /// It belongs on `model`'s queue (another model's, or this one's again for `round`).
    case forward(model: String, round: Int)
    /// The model runs it; `alone` when it was delivered again after the model had started on it (its worker died
    /// or lost the broker), so that a task that crashes workers cannot take others down with it.
    case run(alone: Bool)
}

/// Decides what becomes of the tasks of messages, for a worker serving `ownKey`.
struct Triage: Sendable {
    /// The routing key of the worker's model.
    let ownKey: String
    /// The model queue's delivery limit.
    let deliveryLimit: Int
    /// Rounds of sending again a dead-lettered task whose model never got far enough to fail it.
    static let republishRounds = 3

    /// One decision per task id of `message`, in its order.
    func decide(_ message: TaskMessage, delivery: Delivery, rows: [Int64: TaskRow]) -> [(Int64, TaskDecision)] {
        message.taskIDs.map { ($0, decide(rows[$0], delivery: delivery)) }
    }

    func decide(_ task: TaskRow?, delivery: Delivery) -> TaskDecision {
        // Its job was deleted, or this is a redelivery of finished work (a retry sets failed tasks back to queued
        // before it publishes them, so a failed task delivered again is a duplicate, not a retry).
        guard let task, !task.status.isFinal else { return .settled }
        if task.jobCancelled { return .cancel }
        // Waiting to read its image again: this is an old message of it (its next one is published when the time
        // comes), so reading now would spend a read early.
        if task.waitsToRead { return .settled }
        if delivery.isDeadLetter {
            // Returned too often, but the model did not start on it each time (stopped or preempted workers, lost
            // connections): not the task's fault, so it goes round again.
            if task.attempts <= deliveryLimit && delivery.round < Self.republishRounds {
                return .forward(model: task.jobModel, round: delivery.round + 1)
            }
            return .fail(Self.deadLetterReason(task, deliveries: delivery.deliveryCount))
        }
        if ModelKey.of(task.jobModel) != ownKey { return .forward(model: task.jobModel, round: 0) }
        return .run(alone: delivery.isRedelivery && task.attempts > 0)
    }

    /// What ended a task the broker gave up on, for `last_error`.
    static func deadLetterReason(_ task: TaskRow, deliveries: Int) -> String {
        "dead-lettered after \(max(deliveries, 1)) deliveries: the model started on it \(task.attempts) time(s)"
            + (task.worker.map { ", last on worker \($0)" } ?? "")
            + ", and no worker lived to record it (the worker crashed, was killed or lost its connections each time)"
    }
}
