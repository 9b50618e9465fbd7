// Everything a worker needs to know besides the model: where the services are and how to batch.

import Foundation
import ImageSources
import RabbitMQ

/// Settings of one worker process.
public struct WorkerConfiguration: Sendable {
    public var databaseURL: String
    public var amqpURL: AMQPURL
    public var topology: TaskTopology
    /// Tasks per model batch.
    public var batchSize: Int
    /// How long to wait for a batch to fill after its first task, in seconds.
    public var maxWait: Double
    /// Unacknowledged messages the broker may hand this worker at once.
    public var prefetch: Int
    /// The name recorded on tasks and results.
    public var workerName: String
    public var device: String
    public var maxImagePixels: Int
    /// Bytes a batch may use beyond the weights (see `InferenceEngine.memoryBudget`); nil for no limit.
    public var memoryBudget: Int?
    /// The model name tasks are enqueued under (recorded with results; the queue's routing key).
    public var modelName: String
    /// Seconds after which the worker's reconciler republishes a queued task whose message was never confirmed.
    public var republishAfter: Double
    /// The broker's `consumer_timeout` in seconds: a message held longer than this closes the channel.
    public var consumerTimeout: Double
    /// How images are fetched over HTTP(S), the largest image read from any source, and how many URLs are fetched
    /// at once.
    public var fetch: FetchSettings
    public var maxImageBytes: Int
    public var fetchConcurrency: Int

    public init(
        databaseURL: String, amqpURL: AMQPURL, topology: TaskTopology, batchSize: Int, maxWait: Double,
        prefetch: Int? = nil,
        workerName: String? = nil, device: String = "cpu", maxImagePixels: Int = 89_478_485,
        memoryBudget: Int? = nil, modelName: String, republishAfter: Double = 120, consumerTimeout: Double = 1800,
        fetch: FetchSettings = FetchSettings(), maxImageBytes: Int = 64 << 20, fetchConcurrency: Int = 16
    ) {
        self.fetch = fetch
        self.maxImageBytes = maxImageBytes
        self.fetchConcurrency = max(1, fetchConcurrency)
        self.modelName = modelName
        self.republishAfter = republishAfter
        self.consumerTimeout = consumerTimeout
        self.memoryBudget = memoryBudget
        self.databaseURL = databaseURL
        self.amqpURL = amqpURL
        self.topology = topology
        self.batchSize = batchSize
        self.maxWait = maxWait
        self.prefetch = prefetch ?? batchSize * 2
        self.workerName =
            workerName ?? Self.defaultWorkerName
        self.device = device
        self.maxImagePixels = maxImagePixels
    }

    /// The name of a worker not given one: its host and process id.
    public static var defaultWorkerName: String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}
