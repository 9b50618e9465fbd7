// Tasks into the model and answers out: ready tasks are marked started and submitted to the scheduler as they come
// (a task delivered again after its model had started runs alone, once everything else has finished), each step
// runs every running sequence, and each task's outcome is taken as soon as it ends.

import Foundation
import Generation
import Jobs

extension InferenceWorker {
    /// Requests the scheduler holds at most: its rows and as many waiting, whose images' vision passes and prefixes
    /// it computes while the others decode. Tasks beyond wait unstarted, so that a task is marked running when the
    /// model is about to take it, and a stop or a crash has no more tasks in hand than that.
    var schedulerDepth: Int { 2 * scheduler.configuration.maxRows }

    /// Submits the tasks whose images are ready, oldest first, while the scheduler has room. A task to run alone
    /// waits until the scheduler is empty, then runs with nothing beside it; nothing else starts until it ends.
    /// Nothing starts once a stop is requested.
    func submit() throws {
        guard !stop.isRaised, !isolating else { return }
        if !isolated.isEmpty {
            guard scheduler.isIdle else { return }
            let alone = isolated.removeFirst()
            isolating = try start([alone]) > 0
            return
        }
        let room = schedulerDepth - scheduler.count
        guard !ready.isEmpty, room > 0 else { return }
        let batch = Array(ready.prefix(room))
        ready.removeFirst(batch.count)
        _ = try start(batch)
    }

    /// Marks `tasks` started (one more attempt) and submits them; returns how many were submitted.
    ///
    /// A task whose messages went back to the queue (a stop, a lost connection) is left for its redelivery.
    private func start(_ tasks: [Pending]) throws -> Int {
        let queue = services.queue
        held.forget { !queue.isCurrent($0) }
        var starting: [(Pending, InferenceRequest)] = []
        for pending in tasks {
            guard held.start(pending.task.taskID) else {
                inHand.remove(pending.task.taskID)
                continue
            }
            do {
                starting.append((pending, try TaskRequests.request(for: pending.task, image: pending.image!)))
            } catch {
                outcomes.append(
                    (
                        TaskRequests.failure(pending.task, "\(error)", image: pending.image),
                        pending.task.taskKind.rawValue, "model"
                    ))
            }
        }
        guard !starting.isEmpty else { return 0 }
        do {
            try withStore("starting tasks") {
                try $0.start(
                    starting.map(\.0.task.taskID), worker: configuration.workerName, lease: configuration.lease)
            }
        } catch  where stop.isRaised {
            // Stopping while the database is away: these tasks stay queued and go back with their messages, and
            // the tasks the model has in hand still finish.
            return 0
        }
        try hooks.starting(starting.map(\.0.task))
        for (pending, request) in starting {
            nextRequestID += 1
            running[nextRequestID] = (pending, request)
            scheduler.submit(request, id: nextRequestID)
        }
        return starting.count
    }

    /// One scheduler step; the tasks that ended become outcomes to record.
    func step() {
        hooks.beforeStep()
        let now = services.clock.now()
        if lastObservation == nil { lastObservation = now }
        let rows = scheduler.runningRows
        let completions = scheduler.step()
        reportStatistics()
        var tokens = 0
        for completion in completions {
            guard let (pending, request) = running.removeValue(forKey: completion.id) else { continue }
            let outcome = TaskRequests.outcome(
                pending.task, image: pending.image, request: request, result: completion.result)
            if case let .success(answer) = completion.result {
                tokens += answer.tokens.count
                var timings = answer.timings
                timings["decode_image"] = pending.image?.milliseconds
                metrics.phasesTook(timings)
            }
            outcomes.append((outcome, pending.task.taskKind.rawValue, "model"))
            if pending.alone { isolating = false }
        }
        if rows > 0 { metrics.stepRan(rows: rows, tokens: tokens, finished: completions.count) }
        if !completions.isEmpty { observe(tasks: completions.count) }
        if scheduler.isIdle { lastObservation = nil }
    }

    /// The scheduler's counts since last time, to the metrics.
    private func reportStatistics() {
        let now = scheduler.statistics
        metrics.schedulerCounted(now, since: reportedStatistics)
        reportedStatistics = now
    }

    /// Takes in the tasks finished since the last reading and, when the consumer timeout calls for it, holds fewer
    /// messages.
    private func observe(tasks: Int) {
        let now = services.clock.now()
        let wasExceeding = holding.exceedsTimeout(tasksPerMessage: tasksPerMessage)
        holding.observe(seconds: now - (lastObservation ?? now), tasks: tasks)
        lastObservation = now
        let wanted = holding.prefetch(tasksPerMessage: tasksPerMessage)
        // RabbitMQ applies a prefetch to new consumers only, so a change subscribes again, and the messages already
        // delivered stay in hand beside the new window. So the prefetch moves only by half or more (or to what was
        // asked for): small moves of the estimate neither churn consumers nor stack windows.
        let applied = services.queue.prefetch
        let moves =
            wanted != applied
            && (Double(wanted) >= Double(applied) * 1.5 || Double(wanted) * 1.5 <= Double(applied)
                || wanted == configuration.prefetch)
        if moves {
            do {
                try withQueue("setting the prefetch") { try services.queue.setPrefetch(wanted) }
            } catch {
                log("setting the prefetch failed: \(error)")
            }
        }
        let perTask = String(format: "%.2f", holding.secondsPerTask ?? 0)
        let timeout = Int(configuration.consumerTimeout)
        if holding.exceedsTimeout(tasksPerMessage: tasksPerMessage) && !wasExceeding {
            log(
                "a message's tasks take \(perTask) s each, more than half the broker's consumer_timeout (\(timeout) s) "
                    + "for one message: raise consumer_timeout in rabbitmq.conf and pass it as --consumer-timeout, "
                    + "or the broker will take tasks back mid-run")
        } else if wanted < configuration.prefetch && (moves || loggedLimit == nil) && wanted != loggedLimit {
            log(
                "a task takes \(perTask) s: holding at most \(wanted) message(s), to acknowledge within half the "
                    + "broker's consumer_timeout (\(timeout) s)")
            loggedLimit = wanted
        }
    }
}
