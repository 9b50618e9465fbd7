// The messages a worker holds unacknowledged, with the tasks of each still open. A message is acknowledged when
// its last task is settled (recorded, sent on, or found finished), not per batch; a task named by several messages
// (published twice) settles in all of them at once. A stop request returns at once the messages none of whose
// tasks the model has started; messages of a lost connection are forgotten (the broker has them back).

import Foundation
import Jobs

/// Messages in hand, shared by the worker loop and its stop handler. Thread-safe.
final class HeldMessages: @unchecked Sendable {
    /// A message in hand: the delivery, its open tasks, and whether the model started on any of them.
    private struct Held {
        let delivery: Delivery
        var open: Set<Int64>
        var started = false
    }

    // Invariant: every property below is read and written only while holding `lock`.
    private let lock = NSLock()
    private var held: [Int: Held] = [:]
    /// The messages holding each open task.
    private var holders: [Int64: Set<Int>] = [:]
    private var nextHandle = 0
    private var closed = false

    /// Holds `delivery` until `tasks` are settled; false (and the message goes back to `queue`) once the stop
    /// handler has run.
    func hold(_ delivery: Delivery, tasks: Set<Int64>, orReturnTo queue: any TaskQueue) -> Bool {
        let held: Bool = lock.withLock {
            guard !closed else { return false }
            nextHandle += 1
            self.held[nextHandle] = Held(delivery: delivery, open: tasks)
            for task in tasks { holders[task, default: []].insert(nextHandle) }
            return true
        }
        if !held { try? queue.requeue(delivery) }
        return held
    }

    /// Messages held.
    var count: Int { lock.withLock { held.count } }

    /// Marks the model started on `task`: from now on, a stop finishes it instead of returning its messages. False
    /// when no message holds it any more (they went back to the queue): the task must not start.
    func start(_ task: Int64) -> Bool {
        lock.withLock {
            guard let handles = holders[task], !handles.isEmpty else { return false }
            for handle in handles { held[handle]!.started = true }
            return true
        }
    }

    /// Settles `task` in every message holding it; returns the messages whose last open task it was (to
    /// acknowledge now).
    func settle(_ task: Int64) -> [Delivery] {
        lock.withLock {
            var finished: [Delivery] = []
            for handle in holders.removeValue(forKey: task) ?? [] {
                held[handle]!.open.remove(task)
                if held[handle]!.open.isEmpty { finished.append(held.removeValue(forKey: handle)!.delivery) }
            }
            return finished
        }
    }

    /// Drops the messages `isGone` says the broker has taken back (their connection was lost): they will be
    /// delivered again, and their tasks now in flight still record their results.
    func forget(where isGone: (Delivery) -> Bool) {
        lock.withLock {
            for (handle, message) in held where isGone(message.delivery) { drop(handle) }
        }
    }

    /// Removes a message (under the lock).
    private func drop(_ handle: Int) {
        guard let message = held.removeValue(forKey: handle) else { return }
        for task in message.open {
            holders[task]?.remove(handle)
            if holders[task]?.isEmpty == true { holders[task] = nil }
        }
    }

    /// The stop handler: returns to `queue` every message the model has not started on and holds no more; returns
    /// how many went back.
    func returnUnstarted(to queue: any TaskQueue) -> Int {
        let returning: [Delivery] = lock.withLock {
            closed = true
            let unstarted = held.filter { !$0.value.started }
            for handle in unstarted.keys { drop(handle) }
            return unstarted.values.map(\.delivery)
        }
        for delivery in returning { try? queue.requeue(delivery) }
        return returning.count
    }

    /// After the last task in hand finished: returns every message still open to `queue` (their open tasks were
    /// never started; the finished ones are skipped when they come back); returns how many went back.
    func returnRest(to queue: any TaskQueue) -> Int {
        let returning: [Delivery] = lock.withLock {
            closed = true
            defer {
                held = [:]
                holders = [:]
            }
            return held.values.map(\.delivery)
        }
        for delivery in returning { try? queue.requeue(delivery) }
        return returning.count
    }
}
