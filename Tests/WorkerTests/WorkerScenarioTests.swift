// The worker's scenarios on in-memory services with the real scheduler and the tiny model: messages acknowledged
// only when all their tasks are recorded, redelivery, crash isolation, drain, the consumer timeout, poison tasks,
// preemption, dead letters, other models' tasks, cancelled jobs, refused results and lost connections. Each runs
// in well under a second and waits on conditions, never on time.

import Foundation
import Generation
import Jobs
import Testing

@testable import Worker

@Suite struct WorkerScenarioTests {
    @Test func anImagesTasksShareOneVisionPassAndAMessageIsAcknowledgedWhenItsLastTaskIsRecorded() throws {
        let harness = WorkerHarness()
        var tasks: [TaskRow] = []
        for image in WorkerHarness.images.prefix(3) {
            tasks += harness.store.add(
                [image, image, image], texts: ["What is it?", "Where is it?", "Is it red?"], kind: .vqa,
                generation: #"{"max_new_tokens":5,"min_new_tokens":5}"#)
        }
        harness.publish(tasks)
        // Every acknowledged message's tasks are recorded already.
        var acknowledged = 0
        harness.broker.onAck = { [store = harness.store] message in
            let ids = (try? TaskMessage.decode(message.body))?.taskIDs ?? []
            #expect(ids.allSatisfy { store.status($0) == .done }, "acknowledged before its tasks were recorded")
            acknowledged += 1
        }
        harness.startWorker()
        try harness.runToCompletion()
        #expect(harness.store.counts == [.done: 9], "\(harness.store.errors)")
        #expect(acknowledged == 3 && harness.broker.unacknowledged == 0)
        let statistics = harness.worker.scheduler.statistics
        #expect(statistics.imagesEncoded == 3 && statistics.prefixesComputed == 3 && statistics.prefixHits == 6)
        // Each result carries its image's reading time.
        #expect(
            harness.store.results.values.allSatisfy { outcome in
                if case let .result(_, tokens, _, _, _, _, _, timings) = outcome.ending {
                    return tokens.count == 5 && timings.contains("decode_image")
                }
                return false
            })
        #expect(harness.worker.completed == 9 && harness.worker.failed == 0)
    }

    @Test func aFinishedTaskDeliveredAgainIsOnlyAcknowledged() throws {
        let harness = WorkerHarness()
        let tasks = harness.store.add([WorkerHarness.images[0]])
        harness.store.rows[tasks[0].taskID]!.status = .done
        harness.publish(tasks)
        harness.startWorker()
        try harness.run { harness.broker.messages(in: .model("tiny")).isEmpty && harness.broker.unacknowledged == 0 }
        #expect(harness.store.starts.isEmpty && harness.worker.scheduler.statistics.steps == 0)
    }

    @Test func aTaskThatCrashesWorkersFailsAloneAndTheOthersFinish() throws {
        let harness = WorkerHarness(deliveryLimit: 2)
        let images = Array(WorkerHarness.images.prefix(6))
        let tasks = harness.store.add(
            images, texts: images.indices.map { $0 == 3 ? "CRASH" : "What is it?" }, kind: .vqa)
        let poison = tasks[3].taskID
        harness.publish(tasks)
        let hooks = WorkerHooks(starting: { started in
            if started.contains(where: { $0.inputText == "CRASH" }) { throw SimulatedCrash() }
        })
        harness.startWorker(hooks: hooks)
        try harness.runWithRestarts(hooks: hooks)
        #expect(harness.store.counts == [.done: 5, .failed: 1])
        #expect(harness.store.rows[poison]!.attempts == 3, "started once per delivery: the first and two more")
        let reason = harness.store.errors[poison] ?? ""
        #expect(reason.contains("dead-lettered") && reason.contains("started on it 3 time(s)"), "\(reason)")
        // After the first crash it only ever started alone, and the others started at most twice.
        let poisonStarts = harness.store.starts.filter { $0.contains(poison) }
        #expect(poisonStarts.count == 3 && poisonStarts.dropFirst().allSatisfy { $0 == [poison] })
        #expect(tasks.filter { $0.taskID != poison }.allSatisfy { harness.store.rows[$0.taskID]!.attempts <= 2 })
    }

    @Test func aStopFinishesTheTasksInHandAndReturnsTheRestAtOnce() throws {
        let harness = WorkerHarness()
        harness.configuration.prefetch = 8
        let tasks = harness.store.add(
            Array(WorkerHarness.images.prefix(8)), generation: #"{"max_new_tokens":6,"min_new_tokens":6}"#)
        harness.publish(tasks)
        var started = 0
        // The stop comes while the model is running on the first tasks (and their images are all read).
        harness.startWorker(
            hooks: WorkerHooks(
                starting: { started += $0.count },
                beforeStep: { [harness] in
                    if harness.worker.scheduler.statistics.steps == 1 { harness.stop.raise() }
                }))
        try harness.run { false }  // until the worker stops on its own
        #expect(harness.stop.isRaised && started > 0)
        let counts = harness.store.counts
        #expect(counts[.done] == started && counts[.running] == nil, "\(counts)")
        #expect((counts[.queued] ?? 0) == 8 - started)
        // The rest went back without counting as failed deliveries, and nothing is held.
        #expect(harness.broker.unacknowledged == 0)
        #expect(harness.broker.messages(in: .model("tiny")).allSatisfy { $0.deliveryCount == 0 })
        harness.startWorker()
        try harness.runToCompletion()
        #expect(harness.store.counts == [.done: 8])
        #expect(harness.store.rows.values.allSatisfy { $0.attempts == 1 }, "no task started twice")
    }

    @Test func slowTasksShrinkWhatIsHeldSoThatTheBrokerNeverTakesThemBack() throws {
        let harness = WorkerHarness(scheduling: SchedulerConfiguration(maxRows: 2, kvPositions: 4096))
        harness.configuration.prefetch = 24
        harness.configuration.initialPrefetch = 2
        harness.configuration.consumerTimeout = 120
        let tasks = harness.store.add(
            (0..<24).map { WorkerHarness.images[$0 % 8] }, generation: #"{"max_new_tokens":4,"min_new_tokens":4}"#)
        harness.publish(tasks)
        // Every model step takes 5 s, so a task takes the model about 10 s; a message (an image's three tasks of the
        // job) about 30 s: half the timeout holds about two.
        harness.startWorker(hooks: WorkerHooks(beforeStep: { [clock = harness.clock] in clock.advance(5) }))
        try harness.runToCompletion(consumerTimeout: 120)
        #expect(harness.store.counts == [.done: 24])
        #expect(harness.consumerTimeouts == 0, "no message was held past the broker's timeout")
        #expect(harness.queue.prefetch < 24, "holding at most \(harness.queue.prefetch)")
        #expect(harness.store.rows.values.allSatisfy { $0.attempts == 1 })
    }

    @Test func withoutTimingTheSameJobIsTakenBackByTheBroker() throws {
        // The control for the test above: holding all 24 from the start, the last ones wait past the timeout.
        let harness = WorkerHarness(scheduling: SchedulerConfiguration(maxRows: 2, kvPositions: 4096))
        harness.configuration.prefetch = 24
        harness.configuration.initialPrefetch = 24
        harness.configuration.consumerTimeout = 1e9  // the worker is told nothing of the broker's timeout
        let tasks = harness.store.add(
            (0..<24).map { WorkerHarness.images[$0 % 8] }, generation: #"{"max_new_tokens":4,"min_new_tokens":4}"#)
        harness.publish(tasks)
        harness.startWorker(hooks: WorkerHooks(beforeStep: { [clock = harness.clock] in clock.advance(5) }))
        try harness.runToCompletion(consumerTimeout: 120)
        #expect(harness.consumerTimeouts > 0)
        #expect(harness.store.counts == [.done: 24], "and still nothing is lost")
    }

    @Test func poisonTasksFailAloneWithTheirReasons() throws {
        let harness = WorkerHarness()
        let good = harness.store.add(Array(WorkerHarness.images.prefix(2)), kind: .caption)
        let missing = harness.store.add(["/no/such/image.jpg"], kind: .caption)
        let badSettings = harness.store.add(
            [WorkerHarness.images[2]], kind: .caption, generation: #"{"max_new_tokens":0}"#)
        var badTemplate = harness.store.add([WorkerHarness.images[3]], kind: .caption)
        harness.store.rows[badTemplate[0].taskID]!.promptTemplate = "no image marker"
        badTemplate[0].promptTemplate = "no image marker"
        let tooLong = harness.store.add(
            [WorkerHarness.images[4]], kind: .caption, generation: #"{"max_new_tokens":100000}"#)
        // Sizes that would overflow, and more beams than the worker decodes at once (8 rows).
        let overflowing = harness.store.add(
            [WorkerHarness.images[5]], kind: .caption, generation: #"{"max_new_tokens":9223372036854775807}"#)
        let tooWide = harness.store.add(
            [WorkerHarness.images[6]], kind: .caption, generation: #"{"max_new_tokens":4,"num_beams":9}"#)
        harness.publish(good + missing + badSettings + badTemplate + tooLong + overflowing + tooWide)
        harness.broker.publish(Array("not a task".utf8), to: .model("tiny"))
        harness.startWorker()
        try harness.runToCompletion()
        #expect(harness.store.counts == [.done: 2, .failed: 6])
        let errors = harness.store.errors
        #expect(errors[missing[0].taskID]?.contains("/no/such/image.jpg") == true)
        #expect(errors[badSettings[0].taskID]?.contains("max_new_tokens") == true)
        #expect(errors[badTemplate[0].taskID]?.contains("<ImageHere>") == true)
        #expect(errors[tooLong[0].taskID]?.contains("positions") == true, "\(errors)")
        #expect(errors[overflowing[0].taskID]?.contains("max_new_tokens must be between 1 and") == true)
        #expect(errors[tooWide[0].taskID]?.contains("num_beams 9 is more than the 8 sequences") == true)
        let parked = harness.broker.messages(in: .rejected)
        #expect(parked.count == 1 && parked[0].headers["x-infmllm-error"]?.contains("malformed") == true)
    }

    @Test func sequencesPreemptedForMemoryFinishWithTheSameTokens() throws {
        func run(kvPositions: Int) throws -> (tokens: [Int64: [Int]], preemptions: Int) {
            let harness = WorkerHarness(
                scheduling: SchedulerConfiguration(maxRows: 8, kvPositions: kvPositions, decodeReserve: 2))
            // Six questions on one image: one message, one prefix, and the six admitted at once, whatever the
            // timing of the image's reading. In 160 positions (10 blocks) they cannot all grow to 20 new tokens.
            let questions = ["What is it?", "Is it red?", "Who is there?", "Where is it?", "How many?", "Why?"]
            let tasks = harness.store.add(
                Array(repeating: WorkerHarness.images[0], count: 6), texts: questions, kind: .vqa,
                generation: #"{"max_new_tokens":20,"min_new_tokens":20}"#)
            harness.publish(tasks)
            harness.startWorker()
            try harness.runToCompletion()
            #expect(harness.store.counts == [.done: 6])
            let tokens = harness.store.results.mapValues { outcome -> [Int] in
                if case let .result(_, tokens, _, _, _, _, _, _) = outcome.ending { return tokens }
                return []
            }
            return (tokens, harness.worker.scheduler.statistics.preemptions)
        }
        let roomy = try run(kvPositions: 4096)
        let tight = try run(kvPositions: 160)
        #expect(roomy.preemptions == 0 && tight.preemptions > 0)
        #expect(tight.tokens == roomy.tokens)
    }

    @Test func deadLetteredTasksGoRoundAgainUnlessTheModelStartedThemEachTime() throws {
        let harness = WorkerHarness(deliveryLimit: 2)
        let tasks = harness.store.add(Array(WorkerHarness.images.prefix(3)))
        harness.store.rows[tasks[1].taskID]!.attempts = 3  // started on every delivery: its fault
        for (index, task) in tasks.enumerated() {
            // The third has gone round three times already.
            harness.broker.publish(
                TaskMessage(jobID: 1, taskIDs: [task.taskID]).encoded(), to: .dead, round: index == 2 ? 3 : 0)
        }
        harness.startWorker()
        try harness.runToCompletion()
        #expect(harness.store.status(tasks[0].taskID) == .done, "queued again, then run")
        #expect(harness.store.errors[tasks[1].taskID]?.contains("dead-lettered") == true)
        #expect(harness.store.errors[tasks[2].taskID]?.contains("dead-lettered") == true)
    }

    @Test func anotherModelsTasksAreSentToItsQueueAndCancelledJobsEndCancelled() throws {
        let harness = WorkerHarness()
        let other = harness.store.add([WorkerHarness.images[0]], job: 2, model: "/models/other")
        let cancelled = harness.store.add([WorkerHarness.images[1]], job: 3)
        harness.store.rows[cancelled[0].taskID]!.jobCancelled = true
        let mine = harness.store.add([WorkerHarness.images[2]], job: 4)
        for task in other + cancelled + mine {
            harness.broker.publish(TaskMessage(jobID: task.jobID, taskIDs: [task.taskID]).encoded(), to: .model("tiny"))
        }
        // The broker fails the first publish: the publisher recovers by itself, and the store's connection, which
        // did not fail, is kept.
        harness.broker.publishFailures = 1
        harness.startWorker()
        try harness.run { harness.worker.isIdle && harness.broker.messages(in: .model("tiny")).isEmpty }
        #expect(harness.broker.publishFailures == 0 && harness.store.connections == 1)
        #expect(harness.store.status(other[0].taskID) == .queued)
        #expect(harness.broker.messages(in: .model("other")).count == 1)
        #expect(harness.store.published.contains(other[0].taskID))
        #expect(harness.store.status(cancelled[0].taskID) == .cancelled)
        #expect(harness.store.status(mine[0].taskID) == .done)
        #expect(harness.broker.unacknowledged == 0)
    }

    @Test func aResultTheStoreRefusesFailsOnlyItsTask() throws {
        let harness = WorkerHarness()
        let tasks = harness.store.add(Array(WorkerHarness.images.prefix(4)))
        let victim = tasks[2].taskID
        harness.store.refuses = { $0.taskID == victim && $0.isResult ? "no room for task \(victim)" : nil }
        harness.publish(tasks)
        harness.startWorker()
        try harness.runToCompletion()
        #expect(harness.store.counts == [.done: 3, .failed: 1])
        #expect(harness.store.errors[victim]?.contains("could not be stored: no room for task \(victim)") == true)
    }

    @Test func aStopWhileTheDatabaseIsAwayFinishesTheTasksInHandAndLeavesTheRestQueued() throws {
        let harness = WorkerHarness(scheduling: SchedulerConfiguration(maxRows: 2, kvPositions: 4096))
        harness.configuration.prefetch = 8
        let tasks = harness.store.add(
            Array(WorkerHarness.images.prefix(8)), generation: #"{"max_new_tokens":6,"min_new_tokens":6}"#)
        harness.publish(tasks)
        // While the first tasks decode, the database goes away, and the stop comes while the worker waits for it
        // to start the next ones.
        harness.startWorker(
            hooks: WorkerHooks(beforeStep: { [harness] in
                if harness.worker.scheduler.statistics.steps == 1 {
                    harness.store.startFailures = 1
                    harness.store.onStartFailure = { harness.stop.raise() }
                }
            }))
        try harness.run { false }  // until the worker stops on its own
        let first = harness.store.starts.count
        #expect(harness.stop.isRaised && harness.store.startFailures == 0)
        let counts = harness.store.counts
        #expect(counts[.running] == nil && (counts[.done] ?? 0) > 0 && (counts[.queued] ?? 0) > 0, "\(counts)")
        #expect(harness.broker.unacknowledged == 0)
        harness.startWorker()
        try harness.runToCompletion()
        #expect(harness.store.counts == [.done: 8] && harness.store.starts.count > first)
        #expect(harness.store.rows.values.allSatisfy { $0.attempts == 1 }, "no task started twice")
    }

    @Test func lostConnectionsAreRetriedAndNothingIsLostOrDoubled() throws {
        let harness = WorkerHarness()
        let tasks = harness.store.add(Array(WorkerHarness.images.prefix(5)))
        harness.publish(tasks)
        harness.startWorker()
        harness.store.transientFailures = 3
        try harness.run { harness.store.counts[.done] ?? 0 >= 2 }
        // The broker connection drops mid-job: what it held comes back and is finished once.
        harness.queue.crash()
        try harness.runToCompletion()
        #expect(harness.store.counts == [.done: 5] && harness.store.results.count == 5)
        #expect(harness.broker.unacknowledged == 0)
    }

    @Test func jobsThatReuseResultsTakeTheEarlierResultForTheSameContent() throws {
        let harness = WorkerHarness()
        let first = harness.store.add([WorkerHarness.images[0]], job: 1)
        harness.publish(first)
        harness.startWorker()
        try harness.runToCompletion()
        // The same content under another name, in a job that reuses results.
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("copy-\(UUID().uuidString).png").path
        try FileManager.default.copyItem(atPath: WorkerHarness.images[0], toPath: copy)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let second = harness.store.add([copy], job: 2, reuseResults: true)
        harness.publish(second)
        let startsBefore = harness.store.starts.count
        try harness.runToCompletion()
        #expect(harness.store.status(second[0].taskID) == .done)
        #expect(harness.store.starts.count == startsBefore, "the model did not run")
    }

    /// The database restarts while the worker idles: its next reconciler run finds the store's connection lost and
    /// makes a new store, instead of retrying the publishing on the lost connection for as long as the worker lives.
    @Test func aReconcilerRunAfterTheDatabaseRestartedMakesANewStore() throws {
        let harness = WorkerHarness()
        harness.startWorker()
        harness.worker.reconcileIfDue()
        #expect(harness.worker.metrics.exposition().contains("infmllm_reconciler_runs_total 1"))
        let connections = harness.store.connections
        harness.store.connectionLost = true
        harness.clock.advance(120)
        harness.worker.reconcileIfDue()
        #expect(harness.store.connections == connections + 1, "a new store")
        #expect(harness.worker.metrics.exposition().contains("infmllm_reconciler_runs_total 2"))
    }

    /// A reconciler that another worker holds without finishing a run for too long is logged and counted; one that
    /// ran recently is not.
    @Test func aReconcilerHeldElsewhereForTooLongIsCounted() throws {
        let harness = WorkerHarness()
        harness.store.reconcilerHeldElsewhere = true
        harness.store.reconcilerIdle = 30
        harness.startWorker()
        harness.worker.reconcileIfDue()
        #expect(harness.worker.metrics.exposition().contains("infmllm_reconciler_overdue_total 0"))
        harness.store.reconcilerIdle = 3600
        harness.clock.advance(120)
        harness.worker.reconcileIfDue()
        #expect(harness.worker.metrics.exposition().contains("infmllm_reconciler_overdue_total 1"))
        harness.store.reconcilerHeldElsewhere = false
        harness.clock.advance(120)
        harness.worker.reconcileIfDue()
        #expect(harness.worker.metrics.exposition().contains("infmllm_reconciler_runs_total 1"))
    }
}

/// What becomes of a task whose image could not be read: a reason that may pass queues it again, later each time,
/// until the worker's limit; any other reason fails it at once.
@Suite struct UnreadableImageTests {
    @Test func aPassingReasonIsReadAgainLaterUntilTheLimit() {
        let configuration = WorkerConfiguration(modelName: "tiny", readRetries: 2, readRetryAfter: 60)
        var task = TaskRow(taskID: 7, jobID: 1, imageURI: "https://x/a.jpg", taskKind: .caption, jobModel: "tiny")
        let passing = ImagePipeline.ImageFailure(reason: "https://x/a.jpg: HTTP 503", isTransient: true)
        var waits: [Double] = []
        for retries in 0..<2 {
            task.readRetries = retries
            guard
                case let .readLater(reason, after) = TaskRequests.unreadable(
                    task, passing, configuration: configuration
                ).ending
            else {
                Issue.record("read \(retries) time(s) again: not queued again")
                return
            }
            #expect(reason == passing.reason)
            waits.append(after)
        }
        #expect(waits == [60, 120], "twice as long each time")
        task.readRetries = 2
        guard case let .failed(reason) = TaskRequests.unreadable(task, passing, configuration: configuration).ending
        else {
            Issue.record("past the limit: not failed")
            return
        }
        #expect(reason == "https://x/a.jpg: HTTP 503 (read again 2 time(s) later, to no avail)")
        // A reason that will not pass, or no reads again asked for: failed at once, as it was.
        task.readRetries = 0
        let lasting = ImagePipeline.ImageFailure(reason: "https://x/a.jpg: HTTP 404")
        guard
            case .failed("https://x/a.jpg: HTTP 404") = TaskRequests.unreadable(
                task, lasting, configuration: configuration
            ).ending
        else {
            Issue.record("a 404 was not failed at once")
            return
        }
        let never = WorkerConfiguration(modelName: "tiny", readRetries: 0)
        guard case .failed(passing.reason) = TaskRequests.unreadable(task, passing, configuration: never).ending else {
            Issue.record("--read-retries 0 did not fail it at once")
            return
        }
    }
}
