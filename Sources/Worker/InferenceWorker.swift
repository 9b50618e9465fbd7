// The worker loop: take a batch of task messages, load the tasks, decode the images in parallel, run the model,
// commit every outcome in one transaction, then acknowledge. Transient failures reconnect and retry; bad input
// fails only its own task; a stop request finishes the batch in hand and returns the rest to the queue.

import Dispatch
import Foundation
import Generation
import Imaging
import Jobs
import Models
import Postgres
import RabbitMQ

/// One worker process's consume → infer → persist → ack loop. Runs on the thread that calls `run()`.
public final class InferenceWorker {
    let configuration: WorkerConfiguration
    let engine: InferenceEngine
    let provenance: Provenance
    let stop: StopSignal
    let log: (String) -> Void
    let queue: QueueSession
    let decoder: ImageDecoder
    private var store: PostgresJobStore?
    private let backoff = Backoff()
    /// Tasks completed and failed since start, for the exit message.
    public private(set) var completed = 0
    public private(set) var failed = 0

    public init(
        configuration: WorkerConfiguration, model: VisionLanguageModel, weightsFingerprint: String, stop: StopSignal,
        log: @escaping (String) -> Void
    ) {
        self.configuration = configuration
        engine = InferenceEngine(model: model, memoryBudget: configuration.memoryBudget)
        provenance = Provenance(
            modelName: (model.directory as NSString).lastPathComponent, weightsSHA256: weightsFingerprint,
            device: configuration.device, worker: configuration.workerName)
        self.stop = stop
        self.log = log
        queue = QueueSession(configuration: configuration)
        decoder = ImageDecoder(maxPixels: configuration.maxImagePixels)
    }

    /// Runs until the stop signal is raised; returns after draining.
    ///
    /// Two batches are in hand at a time: while the model runs on one, the next one's images decode on the
    /// other cores. A stop request ends collecting; the batch in hand is finished before returning.
    public func run() throws {
        try withQueue("connecting to RabbitMQ") { _ = 0 }
        try withStore("connecting to PostgreSQL") { _ in _ = 0 }
        log(
            "worker \(configuration.workerName) consuming \(configuration.topology.queue) (batch \(configuration.batchSize))"
        )
        var ready: PreparedBatch?
        while true {
            let batch = stop.isRaised ? [] : try collectBatch(waitForFirst: ready == nil)
            let next = batch.isEmpty ? nil : try prepare(batch)
            if let ready { try finish(ready) }
            ready = next.map { $0.decoded() }
            if ready == nil && stop.isRaised { break }
        }
        queue.close()
        log("worker \(configuration.workerName) stopped: \(completed) done, \(failed) failed")
    }

    // MARK: - Batching

    /// Up to `batchSize` deliveries: waits for the first, then at most `maxWait` seconds for the rest. When a
    /// batch is already waiting for the model (`waitForFirst` false), takes only what arrives within a few
    /// milliseconds, so the model is never kept waiting.
    private func collectBatch(waitForFirst: Bool) throws -> [QueueSession.Delivery] {
        var batch: [QueueSession.Delivery] = []
        var deadline: Double? = waitForFirst ? nil : monotonicNow() + 0.005
        while batch.count < configuration.batchSize && !stop.isRaised {
            let remaining = deadline.map { $0 - monotonicNow() } ?? 0.25
            if deadline != nil && remaining <= 0 { break }
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

    private struct Work {
        let message: QueueSession.Delivery
        let task: TaskRow
        var image: RGBImage?
        var sha256: String?
        var failure: String?
    }

    /// A batch whose tasks are loaded and claimed, and whose images are decoding (or decoded).
    private final class PreparedBatch {
        var work: [Work]
        var outcomes: [TaskOutcome]
        var toAck: [QueueSession.Delivery]
        let decoding = DispatchGroup()
        let results: ResultsBox
        var decodeMilliseconds = 0.0

        init(work: [Work], outcomes: [TaskOutcome], toAck: [QueueSession.Delivery]) {
            self.work = work
            self.outcomes = outcomes
            self.toAck = toAck
            results = ResultsBox(count: work.count)
        }

        /// Waits for the images and moves them into `work`.
        func decoded() -> PreparedBatch {
            decoding.wait()
            // The decoding work's own time, not the wait (which overlaps the previous batch's inference).
            decodeMilliseconds = results.elapsed * 1000 / Double(max(work.count, 1))
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

    /// Parses the messages, settles the ones that need no model (bad, dead-lettered, finished, cancelled),
    /// claims the rest and starts decoding their images on other threads.
    private func prepare(_ batch: [QueueSession.Delivery]) throws -> PreparedBatch {
        var toAck: [QueueSession.Delivery] = []
        var outcomes: [TaskOutcome] = []
        var candidates: [(QueueSession.Delivery, TaskMessage)] = []
        for message in batch {
            let isDeadLetter = message.consumerTag == queue.deadLetterConsumerTag
            let parsed: TaskMessage
            do {
                parsed = try TaskMessage.decode(message.body)
            } catch {
                try withQueue("rejecting a message") { try queue.reject(message, reason: "\(error)") }
                log("rejected a message: \(error)")
                continue
            }
            if isDeadLetter {
                // The broker gave up on it (delivery limit): the task fails with that reason.
                let deliveries =
                    message.headers["x-delivery-count"]?.intValue ?? Int64(configuration.topology.deliveryLimit + 1)
                outcomes.append(
                    TaskOutcome(
                        taskID: parsed.taskID, jobID: parsed.jobID,
                        ending: .failed(
                            reason:
                                "dead-lettered after \(max(deliveries, 1)) deliveries (a worker died on it each time)"))
                )
                toAck.append(message)
            } else {
                candidates.append((message, parsed))
            }
        }
        let rows = try withStore("loading tasks") { try $0.tasks(candidates.map(\.1.taskID)) }
        var work: [Work] = []
        var cancelled: [Int64] = []
        for (message, parsed) in candidates {
            guard let task = rows[parsed.taskID] else {
                toAck.append(message)  // its job was deleted
                continue
            }
            if task.status == .done {
                toAck.append(message)  // a redelivery of finished work
            } else if task.jobCancelled {
                cancelled.append(task.taskID)
                toAck.append(message)
            } else {
                work.append(Work(message: message, task: task))
            }
        }
        try withStore("claiming tasks") { store in
            try store.markCancelled(cancelled)
            try store.claim(work.map(\.task.taskID), worker: configuration.workerName)
        }
        let prepared = PreparedBatch(work: work, outcomes: outcomes, toAck: toAck)
        startDecoding(prepared)
        return prepared
    }

    /// Runs the model on a prepared batch, commits every outcome in one transaction, then acknowledges.
    private func finish(_ batch: PreparedBatch) throws {
        var outcomes = batch.outcomes
        outcomes += infer(batch.work, decodeMilliseconds: batch.decodeMilliseconds)
        let toAck = batch.toAck + batch.work.map(\.message)
        try withStore("recording results") { try $0.record(outcomes, provenance: provenance) }
        for outcome in outcomes {
            if case .failed = outcome.ending { failed += 1 } else { completed += 1 }
        }
        // Acknowledge only after the commit: a crash before this point redelivers, and the commit is idempotent.
        for message in toAck {
            do { try queue.ack(message) } catch {
                log("acknowledging failed (the message will be redelivered): \(error)")
            }
        }
    }

    /// Reads and decodes each task's image on every core, in the background; a file that cannot be used fails
    /// only its task.
    private func startDecoding(_ batch: PreparedBatch) {
        let results = batch.results
        let uris = batch.work.map(\.task.imageURI)
        let decoder = self.decoder
        guard !uris.isEmpty else { return }
        let group = batch.decoding
        group.enter()
        DispatchQueue.global().async {
            let begin = monotonicNow()
            DispatchQueue.concurrentPerform(iterations: uris.count) { index in
                do {
                    let decoded = try decoder.decodeWithDigest(contentsOf: uris[index])
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
                guard let kind = InferenceTask(rawValue: item.task.taskKind.rawValue) else { continue }
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

    // MARK: - Connections

    private func withQueue<T>(_ what: String, _ body: () throws -> T) throws -> T {
        try backoff.retry(
            what, stop: stop, log: log, isTransient: { ($0 as? AMQPError)?.isTransient ?? false },
            reconnect: { try queue.connect() }
        ) {
            if queue.consumer == nil { try queue.connect() }
            return try body()
        }
    }

    private func withStore<T>(_ what: String, _ body: (PostgresJobStore) throws -> T) throws -> T {
        try backoff.retry(
            what, stop: stop, log: log, isTransient: { ($0 as? PostgresError)?.isTransient ?? false },
            reconnect: { store = PostgresJobStore(connection: try PostgresConnection(url: configuration.databaseURL)) }
        ) {
            if store == nil || store?.connection.isHealthy == false {
                store = PostgresJobStore(connection: try PostgresConnection(url: configuration.databaseURL))
            }
            return try body(store!)
        }
    }
}

/// Decode results written by parallel iterations, one slot each.
private final class ResultsBox: @unchecked Sendable {
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
