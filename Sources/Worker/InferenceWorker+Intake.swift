// Taking messages in: parsing (a message that cannot be a task is parked with the reason), loading the tasks' rows,
// acting on each task's triage decision, and starting to read the images of the tasks the model will run.

import Foundation
import Jobs

extension InferenceWorker {
    /// Deliveries that arrived, waiting up to a quarter second for the first when there is nothing else to do.
    func take() throws {
        let idle = scheduler.isIdle && ready.isEmpty && isolated.isEmpty && reading.isEmpty && outcomes.isEmpty
        var deliveries: [Delivery] = []
        while deliveries.count < 256, !stop.isRaised {
            let timeout = deliveries.isEmpty && idle ? 0.25 : 0
            guard let delivery = try withQueue("consuming", { try services.queue.next(timeout: timeout) }) else {
                break
            }
            deliveries.append(delivery)
        }
        if !deliveries.isEmpty { try intake(deliveries) }
    }

    /// Parses `deliveries`, loads their tasks and acts on each task's decision.
    func intake(_ deliveries: [Delivery]) throws {
        var messages: [(Delivery, TaskMessage)] = []
        for delivery in deliveries {
            do {
                messages.append((delivery, try TaskMessage.decode(delivery.body)))
            } catch {
                try park(delivery, reason: "\(error)")
            }
        }
        guard !messages.isEmpty else { return }
        let ids = messages.flatMap(\.1.taskIDs)
        let rows = try withStore("loading tasks") { store in
            try store.markDelivered(ids)
            return try store.tasks(ids)
        }
        var cancelled: [Int64] = []
        var forwards: [String: [TaskRow]] = [:]
        var images: [String: [Pending]] = [:]
        for (delivery, message) in messages {
            recentMessageSizes = recentMessageSizes.suffix(31) + [message.taskIDs.count]
            guard held.hold(delivery, tasks: Set(message.taskIDs), orReturnTo: services.queue) else { continue }
            for (taskID, decision) in triage.decide(message, delivery: delivery, rows: rows) {
                // A task this worker has in hand already (published twice) settles with it.
                guard inHand.insert(taskID).inserted else { continue }
                switch decision {
                case .settled:
                    settle(taskID)
                case .cancel:
                    cancelled.append(taskID)
                case let .fail(reason):
                    let task = rows[taskID]!
                    outcomes.append((TaskRequests.failure(task, reason), task.taskKind.rawValue, "crashed"))
                case let .forward(model, round):
                    let task = rows[taskID]!
                    forwards["\(round) \(model)", default: []].append(task)
                    log(
                        round > 0
                            ? "task \(taskID) reached the delivery limit having started \(task.attempts) time(s): "
                                + "queued again (round \(round) of \(Triage.republishRounds))"
                            : "task \(taskID) is for model \(ModelKey.of(model)), not \(configuration.modelKey): "
                                + "sent to that model's queue", task: task)
                case let .run(alone):
                    images[rows[taskID]!.imageURI, default: []].append(Pending(task: rows[taskID]!, alone: alone))
                }
            }
        }
        if !cancelled.isEmpty {
            try withStore("cancelling tasks") { try $0.markCancelled(cancelled) }
            for taskID in cancelled { settle(taskID) }
        }
        for (key, group) in forwards {
            let round = Int(key.prefix { $0 != " " })!, model = String(key.drop { $0 != " " }.dropFirst())
            do {
                try withStore("sending tasks on", publishing: true) { store in
                    try outbox.publish(
                        group.map {
                            TaskMessage.Task(
                                taskID: $0.taskID, jobID: $0.jobID, imageURI: $0.imageURI, priority: $0.priority)
                        },
                        model: model, store: store, round: round)
                }
            } catch  where !Backoff.isTransient(error) && !stop.isRaised {
                // The broker refuses the other model's queue for good (a declaration whose arguments differ from
                // the queue's, no permission): the tasks fail with the reason, and this worker goes on.
                let reason = "could not be sent on to the queue of model \(ModelKey.of(model)): \(error)"
                logger.error("\(group.count) task(s) \(reason)")
                for task in group {
                    outcomes.append((TaskRequests.failure(task, reason), task.taskKind.rawValue, "forwarding"))
                }
                continue
            }
            for task in group { settle(task.taskID) }
        }
        // One read per image, however many tasks of the messages taken ask about it.
        for (uri, tasks) in images { reading[pipeline.read(uri)] = tasks }
    }

    /// Parks a message that cannot be a task with `reason` (through the worker's publishing connection), then
    /// acknowledges it.
    func park(_ delivery: Delivery, reason: String) throws {
        try withPublisher("parking a rejected message") {
            try services.publisher.park(delivery, reason: reason, worker: configuration.workerName)
        }
        acknowledge(delivery)
        log("rejected a message: \(reason)")
    }

    /// Images read since last time: a task whose image failed fails with the reason; tasks of jobs that reuse
    /// results take an earlier result for the same content when there is one; the rest are ready for the model.
    func collectImages() throws {
        var arrived: [Pending] = []
        for finished in pipeline.takeFinished() {
            guard let tasks = reading.removeValue(forKey: finished.ticket) else { continue }
            switch finished.image {
            case let .success(image):
                arrived += tasks.map { pending in
                    var pending = pending
                    pending.image = image
                    return pending
                }
            case let .failure(failure):
                for pending in tasks {
                    outcomes.append(
                        (
                            TaskRequests.unreadable(pending.task, failure, configuration: configuration),
                            pending.task.taskKind.rawValue, "image"
                        ))
                }
            }
        }
        let reusable = arrived.filter { $0.task.reuseResults }.map { pending in
            let image = pending.image!
            // A task whose prompt cannot be made (a bad template) reuses nothing; the model run gives the reason.
            let prompt =
                (try? TaskRequests.request(for: pending.task, image: image)).flatMap {
                    try? scheduler.engine.promptText(for: $0)
                } ?? "(no prompt: the template cannot be filled in)"
            return ReadImage(
                taskID: pending.task.taskID, sha256: image.sha256, width: image.width, height: image.height,
                prompt: prompt, orientation: image.orientation)
        }
        let reused = Set(
            reusable.isEmpty
                ? []
                : try withStore("reusing results", evenWhenStopping: true) {
                    try $0.reuseResults(for: reusable, weightsSHA256: provenance.weightsSHA256)
                })
        for pending in arrived {
            if reused.contains(pending.task.taskID) {
                completed += 1
                metrics.taskEnded(kind: pending.task.taskKind.rawValue, outcome: "reused")
                settle(pending.task.taskID)
            } else if pending.alone {
                isolated.append(pending)
            } else {
                ready.append(pending)
            }
        }
    }

    /// Settles a task in the messages holding it, acknowledging those whose last open task it was; the task is no
    /// longer in hand.
    func settle(_ taskID: Int64) {
        inHand.remove(taskID)
        for delivery in held.settle(taskID) { acknowledge(delivery) }
    }

    func acknowledge(_ delivery: Delivery) {
        do { try withQueue("acknowledging") { try services.queue.ack(delivery) } } catch {
            log("acknowledging failed (the message will be redelivered): \(error)")
        }
    }
}
