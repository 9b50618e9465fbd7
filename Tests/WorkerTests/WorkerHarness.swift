// A worker on the in-memory services with the tiny random model: tasks enqueued as `enqueue` does, workers made,
// driven round by round until a condition holds, crashed and replaced, with the broker's consumer timeout enforced
// on the harness's clock.

import CPUBackend
import Foundation
import Generation
import Jobs
import Logging
import Models
import TestSupport
import Testing

@testable import Worker

/// What a hook throws to end a worker as a crash would.
struct SimulatedCrash: Error {}

final class WorkerHarness {
    /// The tiny random model, written once per test process.
    static let model: VisionLanguageModel = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "infmllm-worker-tests-\(getpid())/tiny"
        ).path
        _ = try! CheckpointWriter.write(preset: .tiny, variant: .multitask, seed: 3, dtype: .f32, to: directory)
        return try! VisionLanguageModel(directory: directory, backend: CPUBackend(precision: .bf16, threads: 2))
    }()

    static func image(_ name: String) -> String {
        RepositoryFiles.path("Tests/ImagingTests/Fixtures/images/" + name)
    }

    /// Distinct fixture images (different contents).
    static let images = [
        "rgb_64x64.png", "gray_64x48.png", "rgb_100x37.png", "rgb_640x427.jpg", "rgb_17x23.png", "cmyk_64x48.jpg",
        "palette_64x48.png", "rgb_48x40.png",
    ].map(image)

    let broker: FakeBroker
    let store = FakeStore()
    let clock = ManualClock()
    var configuration: WorkerConfiguration
    var scheduling: SchedulerConfiguration
    /// Every worker made, newest last, with its queue.
    private(set) var workers: [(worker: InferenceWorker, queue: FakeQueue, stop: StopSignal)] = []
    /// Deliveries in hand of the current worker's connection, with the clock time each was delivered.
    private var deliveredAt: [UInt64: Double] = [:]
    /// Messages the broker took back because they were held past the consumer timeout.
    private(set) var consumerTimeouts = 0
    /// Whether the current worker has begun (connected, its stop handler set).
    private var begun = false

    init(deliveryLimit: Int = 5, scheduling: SchedulerConfiguration? = nil) {
        broker = FakeBroker(deliveryLimit: deliveryLimit)
        configuration = WorkerConfiguration(
            modelName: "tiny", deliveryLimit: deliveryLimit, prefetch: 16, initialPrefetch: 8, workerName: "w",
            maxImagePixels: 10_000_000, fetchConcurrency: 4)
        self.scheduling = scheduling ?? SchedulerConfiguration(maxRows: 8, kvPositions: 4096)
    }

    /// Publishes `tasks` as `enqueue` does: one message per image of a job.
    func publish(_ tasks: [TaskRow]) {
        for message in TaskMessage.grouping(
            tasks.map { TaskMessage.Task(taskID: $0.taskID, jobID: $0.jobID, imageURI: $0.imageURI) })
        {
            broker.publish(message.encoded(), to: .model(ModelKey.of(tasks[0].jobModel)))
        }
    }

    /// A new worker process (the previous one, if any, is gone).
    @discardableResult
    func startWorker(hooks: WorkerHooks = WorkerHooks(), name: String? = nil) -> InferenceWorker {
        var configuration = configuration
        configuration.workerName = name ?? "w\(workers.count)"
        let queue = FakeQueue(
            broker: broker, modelKey: configuration.modelKey, prefetch: configuration.initialPrefetch)
        let stop = StopSignal()
        let scheduler = Scheduler(engine: InferenceEngine(model: Self.model), configuration: scheduling)
        let services = WorkerServices(
            makeStore: { [store] in store.reconnect() }, queue: queue, publisher: FakePublisher(broker: broker),
            clock: clock)
        let worker = InferenceWorker(
            configuration: configuration, scheduler: scheduler, services: services, weightsFingerprint: "weights",
            stop: stop, hooks: hooks, logger: Logger(label: "test"))
        workers.append((worker, queue, stop))
        deliveredAt = [:]
        begun = false
        return worker
    }

    var worker: InferenceWorker { workers.last!.worker }
    var queue: FakeQueue { workers.last!.queue }
    var stop: StopSignal { workers.last!.stop }

    /// Runs the current worker round by round until `done` holds or it stops; throws what the worker throws.
    /// Messages held longer than `consumerTimeout` seconds of the clock are taken back, as the broker does.
    func run(consumerTimeout: Double = .infinity, until done: () -> Bool) throws {
        let worker = self.worker
        if !begun {
            try worker.begin()
            begun = true
        }
        var rounds = 0
        while !done() {
            rounds += 1
            try #require(rounds < 20_000, "the worker stopped making progress")
            guard try worker.iterate() else { return worker.end() }
            enforce(consumerTimeout)
        }
    }

    /// Runs the current worker until every task is final and nothing is in hand.
    func runToCompletion(consumerTimeout: Double = .infinity) throws {
        try run(consumerTimeout: consumerTimeout) {
            store.rows.values.allSatisfy(\.status.isFinal) && worker.isIdle
                && broker.messages(in: .model("tiny")).isEmpty && broker.messages(in: .dead).isEmpty
        }
    }

    /// Runs workers, replacing each that crashes (as a supervisor would), until every task is final.
    func runWithRestarts(hooks: WorkerHooks, maxWorkers: Int = 20) throws {
        while workers.count < maxWorkers {
            do {
                try runToCompletion()
                return
            } catch is SimulatedCrash {
                queue.crash()
                startWorker(hooks: hooks)
            }
        }
        Issue.record("\(maxWorkers) workers were not enough")
    }

    /// The broker's consumer timeout: a delivery held longer closes the channel, and every message of the
    /// connection comes back counted as failed.
    private func enforce(_ timeout: Double) {
        guard timeout.isFinite else { return }
        let now = clock.now()
        let held = Set(broker.unackedTags(connection: queue.connectionID))
        for tag in held where deliveredAt[tag] == nil { deliveredAt[tag] = now }
        deliveredAt = deliveredAt.filter { held.contains($0.key) }
        if deliveredAt.values.contains(where: { now - $0 > timeout }) {
            consumerTimeouts += 1
            queue.crash()
            deliveredAt = [:]
        }
    }
}
