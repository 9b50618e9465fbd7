// Everything a worker needs to know besides the model and its services: its queue, names and limits.

import Foundation
import ImageSources
import Jobs

/// Settings of one worker process.
public struct WorkerConfiguration: Sendable {
    /// The model name tasks are enqueued under (recorded with results); its key routes them.
    public var modelName: String
    /// The model queue's delivery limit (the broker dead-letters a message returned more often).
    public var deliveryLimit: Int
    /// Unacknowledged messages the broker may hand this worker at once.
    public var prefetch: Int
    /// Messages held until the first tasks have been timed (about one batch of the model).
    public var initialPrefetch: Int
    /// The name recorded on tasks and results.
    public var workerName: String
    public var device: String
    public var maxImagePixels: Int
    /// Seconds after which the worker's reconciler republishes a queued task whose message was never confirmed.
    public var republishAfter: Double
    /// The broker's `consumer_timeout` in seconds: a message held longer than this closes the channel.
    public var consumerTimeout: Double
    /// How images are fetched over HTTP(S), the largest image read from any source, and how many images are read
    /// at once.
    public var fetch: FetchSettings
    public var maxImageBytes: Int
    public var fetchConcurrency: Int
    /// Which local files and archives tasks may read.
    public var localFiles: LocalFiles
    /// Bytes images being decoded may hold at once (see `imageMemory(of:maxImagePixels:)`).
    public var imageMemory: Int
    /// Seconds a started task's lease lasts; the worker renews its leases every third of it. A task whose lease
    /// expires (its worker died or hangs) is queued again by the reconciler.
    public var lease: Double
    /// Seconds after which a queued task whose message was last seen (confirmed or delivered) that long ago, with its
    /// model's queue empty, is published again (a purged queue, a dead letter dropped). Above the broker's consumer
    /// timeout, no live worker still holds it.
    public var undeliveredAfter: Double
    /// Times a task whose image could not be read for a reason that may pass (`ImageSourceError.isTransient`) is
    /// queued again before it fails, and the seconds before the first of those reads; each later one waits twice as
    /// long as the one before.
    public var readRetries: Int
    public var readRetryAfter: Double

    public init(
        modelName: String, deliveryLimit: Int = 5, prefetch: Int = 16, initialPrefetch: Int = 8,
        workerName: String? = nil, device: String = "cpu", maxImagePixels: Int = 89_478_485,
        republishAfter: Double = 120, consumerTimeout: Double = 1800, fetch: FetchSettings = FetchSettings(),
        maxImageBytes: Int = 64 << 20, fetchConcurrency: Int = 16, localFiles: LocalFiles = .anywhere,
        imageMemory: Int = 1 << 30, lease: Double = 300, undeliveredAfter: Double = 1800, readRetries: Int = 2,
        readRetryAfter: Double = 120
    ) {
        self.readRetries = max(0, readRetries)
        self.readRetryAfter = max(0, readRetryAfter)
        self.imageMemory = imageMemory
        self.lease = max(1, lease)
        self.undeliveredAfter = max(1, undeliveredAfter)
        self.localFiles = localFiles
        self.modelName = modelName
        self.deliveryLimit = deliveryLimit
        self.prefetch = max(1, prefetch)
        self.initialPrefetch = max(1, initialPrefetch)
        self.workerName = workerName ?? Self.defaultWorkerName
        self.device = device
        self.maxImagePixels = maxImagePixels
        self.republishAfter = republishAfter
        self.consumerTimeout = consumerTimeout
        self.fetch = fetch
        self.maxImageBytes = maxImageBytes
        self.fetchConcurrency = max(1, fetchConcurrency)
    }

    /// The share of `budget` (memory beyond the weights) a worker keeps for decoding images: room for two of the
    /// largest images allowed, at most a quarter of the budget, at least 64 MiB. The model's working memory is sized
    /// from the rest.
    public static func imageMemory(of budget: Int, maxImagePixels: Int) -> Int {
        ImageMemory.share(of: budget, maxImagePixels: maxImagePixels)
    }

    /// The routing key of the worker's model.
    public var modelKey: String { ModelKey.of(modelName) }

    /// The name of a worker not given one: its host and process id.
    public static var defaultWorkerName: String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}

/// The services a worker talks to, and its clock. The composition root passes PostgreSQL and RabbitMQ; tests pass
/// in-memory ones.
public struct WorkerServices {
    /// Opens a store (a new database connection); called again after a connection is lost.
    public var makeStore: () throws -> any TaskStore
    public var queue: any TaskQueue
    public var publisher: any TaskPublisher
    public var clock: any MonotonicClock

    public init(
        makeStore: @escaping () throws -> any TaskStore, queue: any TaskQueue, publisher: any TaskPublisher,
        clock: any MonotonicClock = SystemClock()
    ) {
        self.makeStore = makeStore
        self.queue = queue
        self.publisher = publisher
        self.clock = clock
    }
}

/// Points where tests and failpoints step into the worker.
public struct WorkerHooks {
    /// Called with the tasks the model is about to start on, after they are marked started; a throw ends `run`
    /// at once, as a crash would (nothing more is recorded or acknowledged).
    public var starting: ([TaskRow]) throws -> Void
    /// Called before each model step.
    public var beforeStep: () -> Void

    public init(starting: @escaping ([TaskRow]) throws -> Void = { _ in }, beforeStep: @escaping () -> Void = {}) {
        self.starting = starting
        self.beforeStep = beforeStep
    }
}
