// The worker loop: take task messages, decide what each task needs (Triage), read its image as soon as it arrives
// (ImagePipeline), run tasks through the scheduler as they are ready (continuous batches; each image's vision pass
// and prompt prefix once), record each outcome as its task ends and acknowledge a message when its last task is
// recorded. Transient failures reconnect and retry; bad input fails only its own task; a task delivered again after
// its worker died runs alone; a stop request returns what was not started and finishes the tasks in hand.

import Foundation
import Generation
import ImageSources
import Imaging
import Jobs
import Logging

/// One worker process's loop. Runs on the thread that calls `run()`; the scheduler computes on the model's threads.
public final class InferenceWorker {
    let configuration: WorkerConfiguration
    let scheduler: Scheduler
    let services: WorkerServices
    let hooks: WorkerHooks
    let stop: StopSignal
    /// Log lines carry the worker's name; lines about a task also its and its job's ids.
    let logger: Logger
    /// What this worker reports to Prometheus (served by `MetricsServer` when the command asks for it).
    public let metrics: WorkerMetrics
    let provenance: Provenance
    let triage: Triage
    let pipeline: ImagePipeline
    let held = HeldMessages()
    let outbox: TaskOutbox
    let backoff: Backoff
    var store: (any TaskStore)?
    var holding: HoldingLimit

    /// A task waiting for its image, then for the model.
    struct Pending {
        let task: TaskRow
        let alone: Bool
        var image: ImagePipeline.Image?
    }

    /// Tasks by the ticket of the image being read for them.
    var reading: [Int: [Pending]] = [:]
    /// Tasks whose image is ready, in arrival order; those to run alone apart.
    var ready: [Pending] = []
    var isolated: [Pending] = []
    /// Whether a task is running alone now (nothing else may start until it ends).
    var isolating = false
    /// Tasks in the scheduler, by the id they were submitted with, with their requests.
    var running: [Int: (pending: Pending, request: InferenceRequest)] = [:]
    var nextRequestID = 0
    /// Tasks this worker is reading, holding or running, by id: a second message naming one settles with it.
    var inHand: Set<Int64> = []
    /// Outcomes to record, with the task's kind and the failure's reason class for the metrics.
    var outcomes: [(outcome: TaskOutcome, kind: String, reason: String)] = []
    var lastReconcile = -Double.infinity
    var lastLeaseRenewal = -Double.infinity
    var lastDepthRead = -Double.infinity
    /// When the scheduler last started working or last finished tasks: throughput readings for `holding`.
    var lastObservation: Double?
    /// Tasks of the last messages taken: the prefetch counts messages, and a message waits for every task ahead
    /// of it, so the largest recent one sizes it.
    var recentMessageSizes: [Int] = []
    var tasksPerMessage: Double { Double(recentMessageSizes.max() ?? 1) }
    /// The limit on messages held last logged (below the prefetch asked for).
    var loggedLimit: Int?
    /// The scheduler's counts when last reported to the metrics.
    var reportedStatistics = Scheduler.Statistics()
    /// Tasks completed, failed, and queued again to read their image later since start, for the exit message.
    public internal(set) var completed = 0
    public internal(set) var failed = 0
    public internal(set) var deferred = 0

    public init(
        configuration: WorkerConfiguration, scheduler: Scheduler, services: WorkerServices,
        weightsFingerprint: String, stop: StopSignal, metrics: WorkerMetrics = WorkerMetrics(),
        hooks: WorkerHooks = WorkerHooks(), logger: Logger
    ) {
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerName)"
        self.logger = logger
        self.metrics = metrics
        self.configuration = configuration
        self.scheduler = scheduler
        self.services = services
        self.hooks = hooks
        self.stop = stop
        provenance = Provenance(
            modelName: configuration.modelName, weightsSHA256: weightsFingerprint, device: configuration.device,
            worker: configuration.workerName)
        triage = Triage(ownKey: configuration.modelKey, deliveryLimit: configuration.deliveryLimit)
        pipeline = ImagePipeline(
            reader: ImageReader(
                fetch: configuration.fetch, maxBytes: configuration.maxImageBytes, files: configuration.localFiles),
            decoder: ImageDecoder(maxPixels: configuration.maxImagePixels),
            preprocessor: scheduler.engine.model.preprocessor, concurrency: configuration.fetchConcurrency,
            memory: ImageMemory(capacity: configuration.imageMemory))
        outbox = TaskOutbox(publisher: services.publisher)
        backoff = Backoff(clock: services.clock)
        holding = HoldingLimit(
            consumerTimeout: configuration.consumerTimeout, prefetch: configuration.prefetch,
            initial: configuration.initialPrefetch)
    }

    /// Runs until the stop signal is raised; returns after draining.
    ///
    /// A stop request returns at once the messages the model has not started on; the tasks in the scheduler are
    /// finished and recorded, and the messages left open go back to the queue before returning.
    public func run() throws {
        try begin()
        while try iterate() {}
        end()
    }

    /// Connects, and sets the stop signal to return the messages not started at once.
    func begin() throws {
        try connect()
        log(
            "worker \(configuration.workerName) consuming the queue of model \(configuration.modelKey) "
                + "(\(scheduler.configuration.maxRows) rows, \(scheduler.kvPositions) key/value positions)")
        let queue = services.queue, held = self.held
        let log: @Sendable (String) -> Void = { [logger] in logger.info("\($0)") }
        stop.onRaise {
            let returned = held.returnUnstarted(to: queue)
            let buffered = (try? queue.stopConsuming()) ?? 0
            log("stopping: \(returned + buffered) message(s) not started went back to the queue")
        }
    }

    /// After the last round: the messages still open go back to the queue.
    func end() {
        let returned = held.returnRest(to: services.queue)
        if returned > 0 { log("\(returned) message(s) with tasks not started went back to the queue") }
        services.queue.close()
        log(
            "worker \(configuration.workerName) stopped: \(completed) done, \(failed) failed"
                + (deferred > 0 ? ", \(deferred) queued again to read their image later" : ""))
    }

    /// Connects to the broker and the database (retrying transient failures).
    func connect() throws {
        try withQueue("connecting to RabbitMQ") { _ = 0 }
        try withStore("connecting to PostgreSQL") { _ in _ = 0 }
    }

    /// One round of the loop: periodic work, new messages, finished images, new tasks into the scheduler, one
    /// model step, and recording what ended. Returns false when the worker has stopped and drained.
    func iterate() throws -> Bool {
        metrics.loopRan()
        reconcileIfDue()
        renewLeasesIfDue()
        readQueueDepthIfDue()
        if !stop.isRaised { try take() }
        try collectImages()
        try submit()
        if !scheduler.isIdle { step() }
        try recordOutcomes()
        if stop.isRaised && scheduler.isIdle && outcomes.isEmpty { return false }
        if scheduler.isIdle && !reading.isEmpty && ready.isEmpty && isolated.isEmpty {
            _ = pipeline.waitForFinished(timeout: 0.05)
        }
        return true
    }

    /// Whether the worker has nothing in hand: no message, image, task or outcome.
    var isIdle: Bool {
        held.count == 0 && reading.isEmpty && ready.isEmpty && isolated.isEmpty && scheduler.isIdle
            && outcomes.isEmpty
    }

    // MARK: - Logging

    func log(_ message: String) { logger.info("\(message)") }

    /// A line about one task, with its and its job's ids as metadata.
    func log(_ message: String, task: TaskRow, level: Logger.Level = .info) {
        logger.log(level: level, "\(message)", metadata: ["task": "\(task.taskID)", "job": "\(task.jobID)"])
    }
}
