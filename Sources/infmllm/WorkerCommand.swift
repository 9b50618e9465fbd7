// `infmllm worker`: consumes task messages and runs them through the model in batches until SIGTERM/SIGINT.

import ArgumentParser
import Foundation
import ImageSources
import Logging
import Models
import RabbitMQ
import Worker

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run tasks from the queue through the model and store the results.",
        discussion: """
            Each model has its own queue: a worker takes only the tasks of jobs enqueued for its model, matched by \
            name (--model-name, default the model directory's last component, as `enqueue --model` is). SIGTERM or \
            SIGINT returns the tasks not started to the queue at once, finishes the batch in hand and exits 0. \
            Lost connections to PostgreSQL or RabbitMQ are retried with backoff; an unreadable image or an \
            impossible prompt fails only its task, with the reason in tasks.last_error. A task delivered again \
            (its worker died) runs in a batch of its own.
            """
    )

    @Option(help: ArgumentHelp("The model directory.", valueName: "dir")) var model: String
    @Option(help: "Tasks per model batch.") var batchSize = 8
    @Option(help: "Milliseconds to wait for a batch to fill after its first task.") var maxWaitMs = 200
    @Option(help: "Unacknowledged messages to hold (default twice the batch size).") var prefetch: Int?
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var language: LanguageOptions
    @Option(help: "The name recorded with tasks and results (default host-pid).") var name: String?
    @Option(help: "The model name jobs are enqueued with (default: the model directory's last component).")
    var modelName: String?
    @Option(
        help: ArgumentHelp(
            "The broker's consumer_timeout in seconds: messages held are limited to what the model finishes in half of it.",
            valueName: "seconds"))
    var consumerTimeout: Double = 1800
    @Option(help: "Seconds one attempt to fetch an image URL may take.") var fetchTimeout: Double = 60
    @Option(help: "Attempts to fetch an image URL, for timeouts, lost connections, 5xx and 429.") var fetchAttempts = 4
    @Option(help: "Image URLs fetched at once.") var fetchConcurrency = 16
    @Option(help: "The largest image file, URL body or archive member read, in bytes.") var maxImageBytes = 64 << 20
    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics (/metrics) and health (/healthz, /readyz) on host:port (default: off).",
            valueName: "host:port"))
    var metricsAddress: String?
    @Option(help: "Log lines as text, logfmt or json.") var logFormat: String = "text"
    @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @OptionGroup var services: ServiceOptions
    @OptionGroup var images: ImageOptions

    func validate() throws {
        guard batchSize >= 1, maxWaitMs >= 0 else {
            throw ValidationError("--batch-size must be ≥ 1 and --max-wait-ms ≥ 0")
        }
        guard consumerTimeout > 0, consumerTimeout <= 86_400 * 365 else {
            throw ValidationError("--consumer-timeout must be > 0 seconds and at most a year")
        }
        guard fetchTimeout > 0, fetchTimeout <= 86_400, fetchAttempts >= 1, fetchConcurrency >= 1, maxImageBytes >= 1
        else {
            throw ValidationError(
                "--fetch-timeout must be > 0 and at most a day, --fetch-attempts, --fetch-concurrency and "
                    + "--max-image-bytes ≥ 1")
        }
    }

    /// The name this worker's tasks are enqueued under.
    var servedModel: String {
        modelName ?? TaskTopology.modelKey(ImageListing.absolute((model as NSString).expandingTildeInPath))
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let stop = StopSignal()
        stop.installHandlers()
        guard let format = LogFormat(rawValue: logFormat) else {
            throw ValidationError("--log-format \(logFormat): use text, logfmt or json")
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level \(logLevel): use trace, debug, info, notice, warning, error or critical")
        }
        LoggingSystem.bootstrap { _ in LineLogHandler(format: format, level: level) }
        var logger = Logger(label: "infmllm.worker")
        logger[metadataKey: "worker"] = "\(name ?? WorkerConfiguration.defaultWorkerName)"
        let log: @Sendable (String) -> Void = { [logger] in logger.info("\($0)") }
        let metrics = WorkerMetrics()
        if let metricsAddress {
            try MetricsServer(address: metricsAddress, metrics: metrics).start()
            log("metrics on http://\(metricsAddress)/metrics")
        }
        let loadBegan = Date()
        let backend = try compute.backend(modelDirectory: model)
        log("loading \(model) on \(backend.summary)")
        // The weights' SHA-256 (cached after the first start) is computed while the model loads.
        let digest = WeightsDigest(directory: model)
        let vlm = try VisionLanguageModel(directory: model, languageDirectory: language.directory, backend: backend)
        try compute.checkLoaded(backend)
        metrics.modelLoaded(seconds: Date().timeIntervalSince(loadBegan))
        let configuration = WorkerConfiguration(
            databaseURL: services.resolvedDatabaseURL(environment),
            amqpURL: try AMQPURL(services.resolvedAMQPURL(environment)),
            topology: TaskTopology(
                prefix: services.resolvedQueuePrefix(environment), model: servedModel,
                deliveryLimit: try services.resolvedDeliveryLimit(environment)),
            batchSize: batchSize, maxWait: Double(maxWaitMs) / 1000, prefetch: prefetch, workerName: name,
            device: ComputeOptions.deviceName(backend),
            maxImagePixels: try images.resolvedMaxImagePixels(environment),
            memoryBudget: try compute.memoryBudget(for: vlm), modelName: servedModel,
            republishAfter: try services.resolvedRepublishAfter(environment), consumerTimeout: consumerTimeout,
            fetch: FetchSettings(timeout: fetchTimeout, attempts: fetchAttempts), maxImageBytes: maxImageBytes,
            fetchConcurrency: fetchConcurrency)
        let worker = InferenceWorker(
            configuration: configuration, model: vlm,
            weightsFingerprint: try digest.value(log: log),
            stop: stop, metrics: metrics, logger: logger)
        try worker.run()
    }
}

/// The weights' SHA-256, computed on a background thread from creation; the quick fingerprint when the files cannot
/// be hashed, with the reason logged.
final class WeightsDigest: @unchecked Sendable {
    // Invariant: `result` is written once, before `done` is signalled, and read only after waiting on it.
    private var result: Result<String, Error> = .failure(CancellationError())
    private let done = DispatchSemaphore(value: 0)
    private let directory: String

    init(directory: String) {
        self.directory = directory
        Thread.detachNewThread { [self] in
            result = Result { try CheckpointFiles.weightsSHA256(directory: directory) }
            done.signal()
        }
    }

    func value(log: (String) -> Void) throws -> String {
        done.wait()
        switch result {
        case .success(let digest): return digest
        case .failure(let error):
            log("cannot hash the weights (\(error)); recording the quick fingerprint, marked fingerprint:, instead")
            return "fingerprint:" + (try CheckpointFiles.fingerprint(directory: directory))
        }
    }
}
