// The worker loop: take a batch of task messages, load the tasks, decode the images in parallel, run the model,
// commit every outcome in one transaction, then acknowledge. Transient failures reconnect and retry; bad input
// fails only its own task; a result PostgreSQL refuses fails only its own task; a task delivered again after its
// worker died runs alone; a stop request returns what was not started and finishes the batch in hand.

import Dispatch
import Foundation
import Generation
import ImageSources
import Imaging
import Jobs
import Logging
import Models
import Postgres
import RabbitMQ

/// One worker process's consume → infer → persist → ack loop. Runs on the thread that calls `run()`.
public final class InferenceWorker {
    let configuration: WorkerConfiguration
    let engine: InferenceEngine
    let provenance: Provenance
    let stop: StopSignal
    /// Log lines carry the worker's name; lines about a task also its and its job's ids.
    let logger: Logger
    let log: @Sendable (String) -> Void
    /// Lines about trouble the worker works around (retries, reconnections).
    let warn: @Sendable (String) -> Void
    let queue: QueueSession
    let decoder: ImageDecoder
    let reader: ImageReader
    private var store: PostgresJobStore?
    private let outbox: TaskOutbox
    private let backoff = Backoff()
    /// Batches taken from the queue whose model run has not started; the stop handler returns them.
    private let unstarted = UnstartedBatches()
    private var holding: HoldingLimit
    private var lastReconcile = -Double.infinity
    private var lastDepthRead = -Double.infinity
    /// A test failpoint: the process aborts when the model starts on a task whose input text is this
    /// (`INFMLLM_FAILPOINT_CRASH_ON_INPUT`), standing in for a task that crashes workers.
    private let crashOnInput = ProcessInfo.processInfo.environment["INFMLLM_FAILPOINT_CRASH_ON_INPUT"]
    /// Tasks completed and failed since start, for the exit message.
    public private(set) var completed = 0
    public private(set) var failed = 0
    /// Rounds of republishing a dead-lettered task whose model never got far enough to fail it.
    static let republishRounds = 3

    /// What this worker reports to Prometheus (served by `MetricsServer` when the command asks for it).
    public let metrics: WorkerMetrics

    public init(
        configuration: WorkerConfiguration, model: VisionLanguageModel, weightsFingerprint: String, stop: StopSignal,
        metrics: WorkerMetrics = WorkerMetrics(), logger: Logger
    ) {
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerName)"
        self.logger = logger
        log = { [logger] in logger.info("\($0)") }
        warn = { [logger] in logger.warning("\($0)") }
        self.metrics = metrics
        self.configuration = configuration
        engine = InferenceEngine(model: model, memoryBudget: configuration.memoryBudget)
        provenance = Provenance(
            modelName: configuration.modelName, weightsSHA256: weightsFingerprint,
            device: configuration.device, worker: configuration.workerName)
        self.stop = stop
        holding = HoldingLimit(
            consumerTimeout: configuration.consumerTimeout, prefetch: configuration.prefetch,
            batchSize: configuration.batchSize)
        queue = QueueSession(configuration: configuration, prefetch: holding.prefetch)
        decoder = ImageDecoder(maxPixels: configuration.maxImagePixels)
        reader = ImageReader(fetch: configuration.fetch, maxBytes: configuration.maxImageBytes)
        outbox = TaskOutbox(
            amqpURL: configuration.amqpURL, prefix: configuration.topology.prefix,
            deliveryLimit: configuration.topology.deliveryLimit)
    }

    /// Runs until the stop signal is raised; returns after draining.
    ///
    /// Two batches are in hand at a time: while the model runs on one, the next one's images decode on the
    /// other cores. A stop request ends collecting and returns the batches not started to the queue at once; the
    /// batch the model is running on is finished before returning.
    public func run() throws {
        try withQueue("connecting to RabbitMQ") { _ = 0 }
        try withStore("connecting to PostgreSQL") { _ in _ = 0 }
        log(
            "worker \(configuration.workerName) consuming \(configuration.topology.queue) for model "
                + "\(configuration.modelName) (batch \(configuration.batchSize))")
        stop.onRaise { [queue, unstarted, log] in
            let returned = unstarted.returnAll(to: queue)
            let buffered = (try? queue.stopConsuming()) ?? 0
            log("stopping: \(returned + buffered) task message(s) not started went back to the queue")
        }
        while true {
            reconcileIfDue()
            readQueueDepthIfDue()
            while !stop.isRaised && unstarted.count < 2 {
                let batch = try collectBatch(waitForFirst: unstarted.count == 0)
                if batch.isEmpty { break }
                // After the stop handler has run, these go back to the queue too.
                unstarted.append(try prepare(batch), orReturnTo: queue)
            }
            guard let next = unstarted.takeFirst() else {
                if stop.isRaised { break }
                continue
            }
            try finish(next.decoded())
        }
        queue.close()
        log("worker \(configuration.workerName) stopped: \(completed) done, \(failed) failed")
    }

    // MARK: - Batching

    /// Up to the batch size of deliveries: waits up to a second for the first, then at most `maxWait` seconds for
    /// the rest. When a batch is already waiting for the model (`waitForFirst` false), takes only what arrives
    /// within a few milliseconds, so the model is never kept waiting.
    private func collectBatch(waitForFirst: Bool) throws -> [QueueSession.Delivery] {
        var batch: [QueueSession.Delivery] = []
        let idleUntil = monotonicNow() + 1  // then return, so the loop's periodic work runs while idle
        var deadline: Double? = waitForFirst ? nil : monotonicNow() + 0.005
        while batch.count < holding.batchSize && !stop.isRaised {
            let remaining = deadline.map { $0 - monotonicNow() } ?? 0.25
            if deadline != nil && remaining <= 0 { break }
            if deadline == nil && monotonicNow() > idleUntil { break }
            let message = try withQueue("consuming") {
                try queue.nextDelivery(timeout: max(0.001, min(remaining, 0.25)))
            }
            guard let message else { continue }
            batch.append(message)
            if deadline == nil { deadline = monotonicNow() + configuration.maxWait }
        }
        return batch
    }

    // MARK: - Processing

    struct Work {
        let message: QueueSession.Delivery
        let task: TaskRow
        var image: RGBImage?
        var sha256: String?
        var failure: String?
    }

    /// Parses the messages and settles at once the ones that need no model (bad, dead-lettered, finished,
    /// cancelled, for another model); the rest become batches whose images start decoding on other threads. A task
    /// delivered again after the model had started on it (its worker died or lost the broker) gets a batch of its
    /// own, so a task that crashes workers cannot take healthy batch-mates down with it again.
    private func prepare(_ batch: [QueueSession.Delivery]) throws -> [PreparedBatch] {
        var parsed: [(QueueSession.Delivery, TaskMessage)] = []
        for message in batch {
            do {
                parsed.append((message, try TaskMessage.decode(message.body)))
            } catch {
                try reject(message, reason: "\(error)")
                log("rejected a message: \(error)")
            }
        }
        let rows = try withStore("loading tasks") { try $0.tasks(parsed.map(\.1.taskID)) }
        var settled: [QueueSession.Delivery] = []
        var outcomes: [TaskOutcome] = []
        var cancelled: [Int64] = []
        var forward: [(task: TaskRow, model: String, round: Int)] = []
        var work: [Work] = []
        var alone: [Work] = []
        let ownKey = configuration.topology.routingKey
        for (message, parsed) in parsed {
            guard let task = rows[parsed.taskID], task.status != .done, task.status != .cancelled else {
                settled.append(message)  // its job was deleted, or a redelivery of finished work
                continue
            }
            if task.jobCancelled {
                cancelled.append(task.taskID)
                settled.append(message)
            } else if message.isDeadLetter {
                settled.append(message)
                let round = Int(message.headers["x-infmllm-round"]?.intValue ?? 0)
                if task.attempts <= configuration.topology.deliveryLimit && round < Self.republishRounds {
                    // Returned too often, but the model did not start on it each time (stopped or preempted
                    // workers, lost connections): not the task's fault, so it goes round again.
                    forward.append((task, task.jobModel, round + 1))
                    log(
                        "task \(task.taskID) reached the delivery limit having started \(task.attempts) time(s): "
                            + "queued again (round \(round + 1) of \(Self.republishRounds))", task: task.taskID,
                        job: task.jobID)
                } else {
                    outcomes.append(
                        TaskOutcome(
                            taskID: task.taskID, jobID: task.jobID,
                            ending: .failed(reason: Self.deadLetterReason(task, message: message))))
                    metrics.taskEnded(kind: task.taskKind.rawValue, outcome: "failed", reason: "crashed")
                }
            } else if TaskTopology.modelKey(task.jobModel) != ownKey {
                forward.append((task, task.jobModel, 0))
                settled.append(message)
                log(
                    "task \(task.taskID) of job \(task.jobID) is for model \(TaskTopology.modelKey(task.jobModel)), not "
                        + "\(ownKey): sent to that model's queue", task: task.taskID, job: task.jobID)
            } else if message.isRedelivery && task.attempts > 0 {
                alone.append(Work(message: message, task: task))
            } else {
                work.append(Work(message: message, task: task))
            }
        }
        if !forward.isEmpty {
            let groups = Dictionary(grouping: forward) { "\($0.round) \($0.model)" }
            for group in groups.values {
                let round = group[0].round
                try withStore("publishing tasks again") { store in
                    try withOutbox("publishing tasks again") {
                        try outbox.publish(
                            group.map { ($0.task.taskID, $0.task.jobID) }, model: group[0].model, store: store,
                            headers: round > 0 ? [("x-infmllm-round", .int(Int64(round)))] : [])
                    }
                }
            }
        }
        if !cancelled.isEmpty || !outcomes.isEmpty {
            try withStore("settling tasks") { store in
                try store.markCancelled(cancelled)
                try store.record(outcomes, provenance: provenance)
            }
            failed += outcomes.count
        }
        for message in settled { acknowledge(message) }
        var batches = work.isEmpty ? [] : [PreparedBatch(work: work)]
        batches += alone.map { PreparedBatch(work: [$0]) }
        for prepared in batches { startDecoding(prepared) }
        return batches
    }

    /// What ended a task the broker gave up on, for `last_error`.
    static func deadLetterReason(_ task: TaskRow, message: QueueSession.Delivery) -> String {
        let deliveries = max(message.message.deliveryCount, 1)
        return
            "dead-lettered after \(deliveries) deliveries: the model started on it \(task.attempts) time(s)"
            + (task.worker.map { ", last on worker \($0)" } ?? "")
            + ", and no worker lived to record it (the worker crashed, was killed or lost its connections each time)"
    }

    /// Runs the model on a prepared batch, commits every outcome in one transaction, then acknowledges.
    private func finish(_ batch: PreparedBatch) throws {
        let began = monotonicNow()
        // Messages that came on a connection since lost (a dropped link, the consumer timeout) are back in the
        // queue and will be delivered again: their tasks are not run twice.
        let current = batch.work.filter { queue.isCurrent($0.message) }
        let stale = batch.work.count - current.count
        if stale > 0 { log("left \(stale) task(s) of a batch to their redelivery: the broker connection was lost") }
        // Jobs enqueued with --skip-done take an earlier result for the same image content when there is one.
        let reusable = current.compactMap { item -> PostgresJobStore.ReadImage? in
            guard item.task.reuseResults, item.failure == nil, let sha = item.sha256, let image = item.image else {
                return nil
            }
            return PostgresJobStore.ReadImage(
                taskID: item.task.taskID, sha256: sha, width: image.width, height: image.height)
        }
        let reused = Set(
            reusable.isEmpty
                ? []
                : try withStore("reusing results") {
                    try $0.reuseResults(for: reusable, weightsSHA256: provenance.weightsSHA256)
                })
        completed += reused.count
        for item in current where reused.contains(item.task.taskID) {
            metrics.taskEnded(kind: item.task.taskKind.rawValue, outcome: "reused")
        }
        let work = current.filter { !reused.contains($0.task.taskID) }
        let starting = work.filter { $0.failure == nil }
        try withStore("starting tasks") {
            try $0.start(starting.map(\.task.taskID), worker: configuration.workerName)
        }
        if let crashOnInput, let task = starting.first(where: { $0.task.inputText == crashOnInput }) {
            log(
                "failpoint INFMLLM_FAILPOINT_CRASH_ON_INPUT: aborting on task \(task.task.taskID)",
                task: task.task.taskID, job: task.task.jobID, level: .critical)
            abort()
        }
        let outcomes = infer(work, decodeMilliseconds: batch.decodeMilliseconds)
        let unstorable = try record(outcomes)
        let byID = Dictionary(work.map { ($0.task.taskID, $0) }, uniquingKeysWith: { first, _ in first })
        var tokens = 0
        for outcome in outcomes {
            let item = byID[outcome.taskID]
            let kind = item?.task.taskKind.rawValue ?? "unknown"
            if unstorable.contains(outcome.taskID) {
                failed += 1
                metrics.taskEnded(kind: kind, outcome: "failed", reason: "storage")
            } else if case .result(_, let ids, _, _, _, _, _) = outcome.ending {
                completed += 1
                tokens += ids.count
                metrics.taskEnded(kind: kind, outcome: "done")
            } else {
                failed += 1
                metrics.taskEnded(kind: kind, outcome: "failed", reason: item?.failure != nil ? "image" : "model")
            }
        }
        if !starting.isEmpty { metrics.batchRan(size: starting.count, tokens: tokens) }
        // Acknowledge only after the commit: a crash before this point redelivers, and the commit is idempotent.
        for item in current { acknowledge(item.message) }
        // The batch's reading and decoding (URLs included) count with the model's time: all of it happens while
        // its messages are held.
        observe(
            seconds: monotonicNow() - began + batch.decodeSeconds,
            tasks: current.count)
    }

    /// A line about one task, with its and its job's ids as metadata.
    private func log(_ message: String, task: Int64, job: Int64, level: Logger.Level = .info) {
        logger.log(level: level, "\(message)", metadata: ["task": "\(task)", "job": "\(job)"])
    }

    private func acknowledge(_ message: QueueSession.Delivery) {
        do { try queue.ack(message) } catch {
            log("acknowledging failed (the message will be redelivered): \(error)")
        }
    }

    /// Commits outcomes in one transaction; when PostgreSQL refuses the batch for good, commits them one at a
    /// time, so that only a task whose result cannot be stored fails, with the reason.
    /// - Returns: the tasks whose results could not be stored and were recorded as failed instead.
    private func record(_ outcomes: [TaskOutcome]) throws -> Set<Int64> {
        do {
            try withStore("recording results", evenWhenStopping: true) {
                try $0.record(outcomes, provenance: provenance)
            }
            return []
        } catch let error as PostgresError where !error.isTransient {
            log("PostgreSQL refused a batch of \(outcomes.count) result(s) (\(error)); recording them one at a time")
            var unstorable: Set<Int64> = []
            for outcome in outcomes where try !recordAlone(outcome) { unstorable.insert(outcome.taskID) }
            return unstorable
        }
    }

    /// - Returns: false when the result could not be stored and a failure was recorded instead.
    private func recordAlone(_ outcome: TaskOutcome) throws -> Bool {
        do {
            try withStore("recording a result") { try $0.record([outcome], provenance: provenance) }
            return true
        } catch let error as PostgresError where !error.isTransient {
            if case .failed = outcome.ending { throw error }  // not even the failure can be stored
            log(
                "task \(outcome.taskID): its result cannot be stored (\(error)); recording it as failed",
                task: outcome.taskID, job: outcome.jobID, level: .error)
            let failure = TaskOutcome(
                taskID: outcome.taskID, jobID: outcome.jobID,
                ending: .failed(reason: "the result could not be stored: \(error)"), imageSHA256: outcome.imageSHA256)
            try withStore("recording a failure") { try $0.record([failure], provenance: provenance) }
            return false
        }
    }

    /// Takes in a batch's time and, when the consumer timeout calls for it, holds fewer messages.
    private func observe(seconds: Double, tasks: Int) {
        let wasExceeding = holding.exceedsTimeout
        holding.observe(seconds: seconds, tasks: tasks)
        let wanted = holding.prefetch
        // RabbitMQ applies a prefetch to new consumers only, so a change subscribes again, and the messages already
        // delivered stay in hand beside the new window. So the prefetch moves only by half or more (or to what was
        // asked for): small moves of the estimate neither churn consumers nor stack windows.
        let applied = queue.prefetchCount
        let moves =
            wanted != applied
            && (Double(wanted) >= Double(applied) * 1.5 || Double(wanted) * 1.5 <= Double(applied)
                || wanted == configuration.prefetch)
        if moves {
            do {
                try withQueue("setting the prefetch") { try queue.setPrefetch(wanted) }
            } catch {
                log("setting the prefetch failed: \(error)")
            }
        }
        let perTask = String(format: "%.1f", holding.secondsPerTask ?? 0)
        if holding.exceedsTimeout && !wasExceeding {
            log(
                "a task takes \(perTask) s, more than half the broker's consumer_timeout "
                    + "(\(Int(configuration.consumerTimeout)) s): raise consumer_timeout in rabbitmq.conf and pass "
                    + "it as --consumer-timeout, or the broker will take tasks back mid-run")
        } else if moves && wanted < configuration.prefetch {
            log(
                "a task takes \(perTask) s: holding at most \(wanted) message(s), batches of "
                    + "\(holding.batchSize), to acknowledge within half the broker's consumer_timeout "
                    + "(\(Int(configuration.consumerTimeout)) s)")
        }
    }

    /// Reads each task's image (files and archive members on every core, URLs up to `fetchConcurrency` at once)
    /// and decodes it on every core, in the background; an image that cannot be used fails only its task.
    private func startDecoding(_ batch: PreparedBatch) {
        let results = batch.results
        let uris = batch.work.map(\.task.imageURI)
        let decoder = self.decoder, reader = self.reader
        guard !uris.isEmpty else { return }
        let remote = uris.indices.filter { ImageReader.isRemote(uris[$0]) }
        let fetched = FetchedBytes(count: uris.count)
        let fetching = OperationQueue()
        fetching.maxConcurrentOperationCount = configuration.fetchConcurrency
        let group = batch.decoding
        group.enter()
        DispatchQueue.global().async {
            let begin = monotonicNow()
            for index in remote {
                fetching.addOperation { fetched.set(index, Result { try reader.bytes(of: uris[index]) }) }
            }
            fetching.waitUntilAllOperationsAreFinished()
            DispatchQueue.concurrentPerform(iterations: uris.count) { index in
                do {
                    let bytes = try fetched.take(index) ?? reader.bytes(of: uris[index])
                    let decoded = try decoder.decodeWithDigest(bytes, source: uris[index])
                    results.set(index, .success((decoded.image, decoded.sha256)))
                } catch {
                    results.set(index, .failure("\(error)"))
                }
            }
            results.finish(elapsed: monotonicNow() - begin)  // before leave(): the waiter reads it next
            group.leave()
        }
    }

    private func infer(_ work: [Work], decodeMilliseconds: Double) -> [TaskOutcome] {
        var outcomes: [TaskOutcome] = []
        var runnable: [(work: Work, request: InferenceRequest)] = []
        let preprocessor = engine.model.preprocessor
        for item in work {
            if let failure = item.failure {
                outcomes.append(
                    TaskOutcome(taskID: item.task.taskID, jobID: item.task.jobID, ending: .failed(reason: failure)))
                continue
            }
            do {
                let parameters = try JSONDecoder().decode(
                    GenerationParameters.self, from: Data(item.task.generationJSON.utf8))
                guard let kind = InferenceTask(rawValue: item.task.taskKind.rawValue) else {
                    throw ModelError.badRequest("task kind \(item.task.taskKind.rawValue) is not one the model runs")
                }
                var request = InferenceRequest(
                    imageKey: item.task.imageURI, image: preprocessor(item.image!), task: kind,
                    text: item.task.inputText,
                    promptTemplate: item.task.promptTemplate, parameters: parameters)
                request.randomStream = UInt64(bitPattern: item.task.taskID)  // the task samples alike in any batch
                runnable.append((item, request))
            } catch {
                outcomes.append(
                    TaskOutcome(taskID: item.task.taskID, jobID: item.task.jobID, ending: .failed(reason: "\(error)")))
            }
        }
        guard !runnable.isEmpty else { return outcomes }
        let results: [Result<InferenceResult, Error>]
        do {
            results = try engine.run(runnable.map(\.request)).map { .success($0) }
        } catch {
            // One request spoiled the batch (a prompt longer than the context, say): run each alone to find it.
            results = runnable.map { pair in Result { try engine.run([pair.request])[0] } }
        }
        for (pair, result) in zip(runnable, results) {
            let task = pair.work.task
            switch result {
            case let .success(answer):
                var timings = answer.timings
                timings["decode_image"] = decodeMilliseconds
                metrics.phasesTook(timings)
                let decoding = String(
                    decoding: (try? JSONEncoder().encode(pair.request.parameters)) ?? Data("{}".utf8), as: UTF8.self)
                let timingsJSON = String(
                    decoding: (try? JSONEncoder().encode(timings)) ?? Data("{}".utf8), as: UTF8.self)
                outcomes.append(
                    TaskOutcome(
                        taskID: task.taskID, jobID: task.jobID,
                        ending: .result(
                            text: answer.text, tokens: answer.tokens, promptTokenCount: answer.promptTokenCount,
                            boxes: answer.boxes.map {
                                StoredBox(
                                    x1: $0.x1, y1: $0.y1, x2: $0.x2, y2: $0.y2, pixelX1: $0.pixelX1,
                                    pixelY1: $0.pixelY1,
                                    pixelX2: $0.pixelX2, pixelY2: $0.pixelY2)
                            }, prompt: answer.prompt, decodingJSON: decoding, timingsJSON: timingsJSON),
                        imageSHA256: pair.work.sha256, imageWidth: pair.work.image?.width,
                        imageHeight: pair.work.image?.height))
            case let .failure(error):
                outcomes.append(
                    TaskOutcome(
                        taskID: task.taskID, jobID: task.jobID, ending: .failed(reason: "\(error)"),
                        imageSHA256: pair.work.sha256))
            }
        }
        return outcomes
    }

    // MARK: - Outbox

    /// Publishes queued tasks whose messages were never confirmed (an `enqueue` that lost the broker after its
    /// commit, say), every half grace period at most once a minute; one worker at a time does it.
    private func reconcileIfDue() {
        let interval = max(1, min(60, configuration.republishAfter / 2))
        guard monotonicNow() - lastReconcile >= interval, !stop.isRaised else { return }
        lastReconcile = monotonicNow()
        do {
            let published = try withStore("publishing unconfirmed tasks") { store in
                try withOutbox("publishing unconfirmed tasks") {
                    try outbox.reconcile(store: store, grace: configuration.republishAfter)
                }
            }
            if let published, published > 0 {
                log("published \(published) queued task(s) whose messages were never confirmed")
            }
        } catch {
            log("publishing unconfirmed tasks failed (tried again later): \(error)")
        }
    }

    /// Seconds between readings of the queue's depth for `infmllm_queue_depth` (between batches, and every second
    /// or so while idle).
    static let queueDepthInterval = 5.0

    private func readQueueDepthIfDue() {
        guard monotonicNow() - lastDepthRead >= Self.queueDepthInterval, !stop.isRaised else { return }
        lastDepthRead = monotonicNow()
        do {
            let queue = configuration.topology.queue
            metrics.queueDepthSeen(try withOutbox("reading the queue depth") { try outbox.readyCount(of: queue) })
        } catch {
            log("reading the queue depth failed (tried again later): \(error)")
        }
    }

    /// Parks a message that cannot be a task in the rejected queue with `reason` (through the outbox, the worker's
    /// publishing connection), then acknowledges it.
    private func reject(_ delivery: QueueSession.Delivery, reason: String) throws {
        let message = delivery.message
        try withOutbox("parking a rejected message") {
            try outbox.park(
                message.body, contentType: message.contentType ?? "application/octet-stream",
                headers: [
                    ("x-infmllm-error", .string(reason)), ("x-infmllm-worker", .string(configuration.workerName)),
                ], in: configuration.topology.rejectedQueue)
        }
        try withQueue("acknowledging a rejected message") { try queue.ack(delivery) }
    }

    // MARK: - Connections

    private func withQueue<T>(_ what: String, _ body: () throws -> T) throws -> T {
        let result = try backoff.retry(
            what, stop: stop, log: warn, isTransient: { ($0 as? AMQPError)?.isTransient ?? false },
            reconnect: {
                metrics.service("rabbitmq", reachable: false)
                metrics.reconnected(to: "rabbitmq")
                try queue.connect()
            }
        ) {
            if !queue.isConnected { try queue.connect() }
            return try body()
        }
        metrics.service("rabbitmq", reachable: true)
        return result
    }

    /// Retries publishing through the outbox, which opens a new connection of its own after a failure.
    private func withOutbox<T>(_ what: String, _ body: () throws -> T) throws -> T {
        try backoff.retry(
            what, stop: stop, log: warn, isTransient: { ($0 as? AMQPError)?.isTransient ?? false }, reconnect: {},
            body)
    }

    /// Runs `body` on the store, reconnecting and retrying transient failures until it works or a stop is
    /// requested; with `evenWhenStopping`, also after a stop request (the commit of the batch in hand).
    private func withStore<T>(
        _ what: String, evenWhenStopping: Bool = false, _ body: (PostgresJobStore) throws -> T
    ) throws -> T {
        let result = try backoff.retry(
            what, stop: evenWhenStopping ? StopSignal() : stop, log: warn,
            isTransient: { ($0 as? PostgresError)?.isTransient ?? false },
            reconnect: {
                metrics.service("postgres", reachable: false)
                metrics.reconnected(to: "postgres")
                store = PostgresJobStore(connection: try PostgresConnection(url: configuration.databaseURL))
            }
        ) {
            if store == nil || store?.connection.isHealthy == false {
                store = PostgresJobStore(connection: try PostgresConnection(url: configuration.databaseURL))
            }
            return try body(store!)
        }
        metrics.service("postgres", reachable: true)
        return result
    }
}

/// A batch whose tasks are loaded and whose images are decoding (or decoded), not yet started.
final class PreparedBatch: @unchecked Sendable {
    // Invariant: `work` and `decodeSeconds` change only in `decoded()`, on the worker loop's thread; the stop
    // handler reads only the messages, which never change.
    var work: [InferenceWorker.Work]
    let decoding = DispatchGroup()
    let results: ResultsBox
    /// The decoding work's own time, not the wait (which overlaps the previous batch's inference).
    var decodeSeconds = 0.0

    /// Each task's share of `decodeSeconds`, in milliseconds.
    var decodeMilliseconds: Double { decodeSeconds * 1000 / Double(max(work.count, 1)) }

    init(work: [InferenceWorker.Work]) {
        self.work = work
        results = ResultsBox(count: work.count)
    }

    var messages: [QueueSession.Delivery] { work.map(\.message) }

    /// Waits for the images and moves them into `work`.
    func decoded() -> PreparedBatch {
        decoding.wait()
        decodeSeconds = results.elapsed
        for index in work.indices {
            switch results.get(index) {
            case let .success((image, sha)):
                work[index].image = image
                work[index].sha256 = sha
            case let .failure(reason):
                work[index].failure = reason
            }
        }
        return self
    }
}

/// The batches taken but not started, shared by the worker loop and the stop handler.
final class UnstartedBatches: @unchecked Sendable {
    // Invariant: `batches` and `closed` are only read and written while holding `lock`.
    private let lock = NSLock()
    private var batches: [PreparedBatch] = []
    private var closed = false

    var count: Int { lock.withLock { batches.count } }

    /// Adds batches in arrival order; once `returnAll` has run, returns their messages to `queue` instead.
    func append(_ more: [PreparedBatch], orReturnTo queue: QueueSession) {
        let added = lock.withLock {
            guard !closed else { return false }
            batches += more
            return true
        }
        if !added { Self.requeue(more.flatMap(\.messages), to: queue) }
    }

    func takeFirst() -> PreparedBatch? {
        lock.withLock { batches.isEmpty ? nil : batches.removeFirst() }
    }

    /// Returns every message of every batch to the queue and takes no more; returns how many went back.
    func returnAll(to queue: QueueSession) -> Int {
        let returning = lock.withLock {
            closed = true
            defer { batches = [] }
            return batches.flatMap(\.messages)
        }
        Self.requeue(returning, to: queue)
        return returning.count
    }

    private static func requeue(_ messages: [QueueSession.Delivery], to queue: QueueSession) {
        for message in messages { try? queue.requeue(message) }
    }
}

/// Fetched bodies, one slot per task, written by the fetching operations and taken once by the decoders.
final class FetchedBytes: @unchecked Sendable {
    // Invariant: `slots` is only read and written while holding `lock`.
    private let lock = NSLock()
    private var slots: [Result<[UInt8], Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<[UInt8], Error>) { lock.withLock { slots[index] = result } }

    /// The fetched bytes of `index` (nil when it was not fetched ahead), rethrowing a failed fetch.
    func take(_ index: Int) throws -> [UInt8]? {
        let slot = lock.withLock {
            defer { slots[index] = nil }
            return slots[index]
        }
        return try slot?.get()
    }
}

/// Decode results written by parallel iterations, one slot each.
final class ResultsBox: @unchecked Sendable {
    enum Entry {
        case success((RGBImage, String))
        case failure(String)
    }

    // Invariant: each index is written by exactly one iteration, and read only after concurrentPerform returns;
    // the lock orders those accesses.
    private let lock = NSLock()
    private var entries: [Entry]

    init(count: Int) {
        entries = [Entry](repeating: .failure("not decoded"), count: count)
    }

    private var seconds = 0.0

    func set(_ index: Int, _ entry: Entry) { lock.withLock { entries[index] = entry } }
    func get(_ index: Int) -> Entry { lock.withLock { entries[index] } }
    /// Seconds the decoding of the whole batch took, once it is done.
    func finish(elapsed: Double) { lock.withLock { seconds = elapsed } }
    var elapsed: Double { lock.withLock { seconds } }
}

func monotonicNow() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
