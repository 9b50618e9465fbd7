// `infmllm worker`: consumes task messages and runs them through the model, in continuous batches, until
// SIGTERM/SIGINT.

import ArgumentParser
import CUDABackend
import Foundation
import Generation
import ImageSources
import Jobs
import Logging
import Models
import Postgres
import RabbitMQ
import Worker

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run tasks from the queue through the model and store the results.",
        discussion: """
            Each model has its own queue: a worker takes only the tasks of jobs enqueued for its model, matched by \
            name (--model-name, default the model directory's last component, as `enqueue --model` is). Tasks join \
            the running batch as they arrive and leave it as they end; tasks on the same image share one vision \
            pass and the keys and values of their common prompt prefix. A task's result is recorded, and its \
            message acknowledged once all of its tasks are, as soon as it ends. SIGTERM or SIGINT returns the tasks \
            not started to the queue at once, finishes the tasks in hand and exits 0. Lost connections to \
            PostgreSQL or RabbitMQ are retried with backoff; an unreadable image or an impossible prompt fails only \
            its task, with the reason in tasks.last_error. A task delivered again after the model had started on \
            it (its worker died) runs alone.
            """
    )

    @Option(help: ArgumentHelp("The model directory.", valueName: "dir")) var model: String
    @Option(help: "Sequences decoded at once (each beam counts as one).") var batchSize = 8
    @Option(help: "Unacknowledged messages to hold (default twice the batch size; a message holds an image's tasks).")
    var prefetch: Int?
    @Option(help: "Positions run through the language model in one step: the decoding rows plus prompt chunks.")
    var stepTokens = 512
    @Option(
        help: ArgumentHelp(
            "Prompt positions per chunk (default 16 on a CPU, 128 on a GPU).",
            discussion:
                "Chunks start at fixed positions of each prompt, so a task's result never depends on what runs beside it; changing this may change the last bits of results in the bf16 and int8 modes. While every row decodes, the next images' prefixes are paced over the decoding steps until a row frees, at least one chunk a step."
        ))
    var prefillChunk: Int?
    @Option(
        help: ArgumentHelp(
            "Keep visual tokens in this directory across jobs (off by default), shared by the workers of a host.",
            discussion: "Env INFMLLM_EMBEDDING_CACHE. Keyed by image content, vision weights, preprocessing and mode.",
            valueName: "dir"))
    var embeddingCache: String?
    @Option(
        help: ArgumentHelp(
            "Bytes the embedding cache may take; the least recently used entries go first.",
            discussion: "Env INFMLLM_EMBEDDING_CACHE_SIZE; default 20G.", valueName: "size"))
    var embeddingCacheSize: String?
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
    @Option(help: "Images read at once (files, archive members and URLs).") var fetchConcurrency = 16
    @Option(help: "The largest image file, URL body or archive member read, in bytes.") var maxImageBytes = 64 << 20
    @Option(
        help: ArgumentHelp(
            "Times a task whose image cannot be read for a reason that may pass is queued again before it fails.",
            discussion: "A timeout, a lost connection, HTTP 5xx or 429 after every --fetch-attempts: the task waits "
                + "--read-retry-after seconds (twice as long each later time) with the reason as its last error, "
                + "then is published again. 0: such tasks fail at once.",
            valueName: "n"))
    var readRetries = 2
    @Option(
        help: ArgumentHelp("Seconds before the first of those reads.", valueName: "seconds"))
    var readRetryAfter: Double = 120
    @Option(
        help: ArgumentHelp(
            "Read local files and archives only under these directories (comma-separated), symbolic links resolved.",
            discussion: "Env INFMLLM_IMAGE_ROOTS; default: any local path.", valueName: "dir,dir"))
    var imageRoots: String?
    @Flag(
        help: ArgumentHelp(
            "Fetch URLs that reach loopback, private, link-local, CGNAT or other non-public addresses.",
            discussion: "Env INFMLLM_ALLOW_PRIVATE_URLS=1; refused by default, on every redirect too."))
    var allowPrivateUrls = false
    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics (/metrics) and health (/healthz, /readyz) on host:port (default: off).",
            valueName: "host:port"))
    var metricsAddress: String?
    @Option(
        help: ArgumentHelp(
            "Seconds between heartbeats on the broker connection (0: none).",
            discussion:
                "A broker connection cut without a close is noticed after two missed heartbeats; a model step must take less than two intervals."
        ))
    var heartbeat = 30
    @Option(
        help: ArgumentHelp(
            "Seconds a started task's lease lasts (renewed every third of it); an expired one is queued again.",
            valueName: "seconds"))
    var lease: Double = 300
    @Option(
        help: ArgumentHelp(
            "Seconds without its message seen (published or delivered) after which a queued task is published again, once its model's queue is empty; keep it above the broker's consumer timeout.",
            valueName: "seconds"))
    var requeueUndeliveredAfter: Double = 1800
    @Option(help: "Log lines as text, logfmt or json.") var logFormat: String = "text"
    @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @OptionGroup var services: ServiceOptions
    @OptionGroup var images: ImageOptions

    func validate() throws {
        if let problem = S3Settings(environment: ProcessInfo.processInfo.environment).problem {
            throw ValidationError(problem)
        }
        guard batchSize >= 1, stepTokens >= 1, prefillChunk ?? 1 >= 1 else {
            throw ValidationError("--batch-size, --step-tokens and --prefill-chunk must be ≥ 1")
        }
        if let prefillChunk, prefillChunk > stepTokens {
            throw ValidationError("--prefill-chunk (\(prefillChunk)) must be at most --step-tokens (\(stepTokens))")
        }
        guard lease >= 1, lease <= 86_400, requeueUndeliveredAfter >= 1, requeueUndeliveredAfter.isFinite else {
            throw ValidationError("--lease must be between 1 s and a day, --requeue-undelivered-after at least 1 s")
        }
        guard readRetries >= 0, readRetries <= 20, readRetryAfter >= 0, readRetryAfter <= 86_400 else {
            throw ValidationError("--read-retries must be between 0 and 20, --read-retry-after between 0 and a day")
        }
        guard heartbeat >= 0, heartbeat <= 3600 else {
            throw ValidationError("--heartbeat must be between 0 (none) and 3600 seconds")
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
        modelName ?? ModelKey.of(ImageListing.absolute((model as NSString).expandingTildeInPath))
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
        if let raised = Self.raiseOpenFileLimit() { log("open files limit raised to \(raised)") }
        let metrics = WorkerMetrics()
        if let metricsAddress {
            try MetricsServer(address: metricsAddress, metrics: metrics).start()
            log("metrics on http://\(metricsAddress)/metrics")
        }
        // Settings from the environment are checked before the model loads (minutes for a 7B model), so that a typo
        // stops the worker at once.
        let maxImagePixels = try images.resolvedMaxImagePixels(environment)
        let deliveryLimit = try services.resolvedDeliveryLimit(environment)
        let republishAfter = try services.resolvedRepublishAfter(environment)
        let allowPrivateURLs = try resolvedAllowPrivateURLs(environment)
        let fileRoots = try localFiles(environment)
        let amqpURLs = try AMQPURL.list(services.resolvedAMQPURL(environment))
        let cache = try openEmbeddingCache(environment, log: log)
        let loadBegan = Date()
        let backend = try compute.backend(modelDirectory: model)
        log("loading \(model) on \(backend.summary)")
        // The weights' SHA-256 (cached after the first start) is computed while the model loads.
        let digest = WeightsDigest(directory: model)
        let vlm = try VisionLanguageModel(directory: model, languageDirectory: language.directory, backend: backend)
        try compute.checkLoaded(backend)
        // Images being decoded live in host memory: their share comes out of the budget the model is sized from
        // (on a GPU, out of what the host has beside it).
        var budget = try compute.memoryBudget(for: vlm)
        let imageMemory = WorkerConfiguration.imageMemory(
            of: backend is CUDABackend ? ComputeOptions.machineMemory() / 2 : budget, maxImagePixels: maxImagePixels)
        if !(backend is CUDABackend) { budget -= imageMemory }
        let engine = InferenceEngine(
            model: vlm, memoryBudget: budget,
            scheduling: SchedulerConfiguration(
                maxRows: batchSize, tokenBudget: stepTokens,
                prefillChunk: min(
                    stepTokens,
                    prefillChunk ?? SchedulerConfiguration.defaultPrefillChunk(gpu: backend is CUDABackend)),
                kvPositions: 0))
        let scheduler = try engine.scheduler(
            embeddingCache: cache, visionFingerprint: cache == nil ? nil : vlm.visionFingerprint())
        metrics.modelLoaded(seconds: Date().timeIntervalSince(loadBegan))
        let topology = TaskTopology(
            prefix: services.resolvedQueuePrefix(environment), model: servedModel,
            deliveryLimit: deliveryLimit)
        let configuration = WorkerConfiguration(
            modelName: servedModel, deliveryLimit: topology.deliveryLimit, prefetch: prefetch ?? 2 * batchSize,
            initialPrefetch: batchSize, workerName: name, device: ComputeOptions.deviceName(backend),
            maxImagePixels: maxImagePixels,
            republishAfter: republishAfter, consumerTimeout: consumerTimeout,
            fetch: FetchSettings(
                timeout: fetchTimeout, attempts: fetchAttempts,
                allowPrivateAddresses: allowPrivateURLs, s3: S3Settings(environment: environment)),
            maxImageBytes: maxImageBytes, fetchConcurrency: fetchConcurrency, localFiles: fileRoots,
            imageMemory: imageMemory, lease: lease, undeliveredAfter: requeueUndeliveredAfter,
            readRetries: readRetries, readRetryAfter: readRetryAfter)
        let databaseURL = services.resolvedDatabaseURL(environment)
        let role = "worker \(configuration.workerName)"
        let workerServices = WorkerServices(
            makeStore: {
                let store = PostgresJobStore(
                    connection: try PostgresConnection(
                        url: databaseURL, applicationName: "infmllm \(role)", statementTimeout: 60_000,
                        lockTimeout: 10_000))
                try store.checkSchema()
                return store
            },
            queue: RabbitTaskQueue(
                urls: amqpURLs, topology: topology, prefetch: batchSize, heartbeat: heartbeat,
                connectionName: "infmllm \(role) consumer"),
            publisher: try services.publisher(environment, role: "\(role) publisher"))
        let worker = InferenceWorker(
            configuration: configuration, scheduler: scheduler, services: workerServices,
            weightsFingerprint: try digest.value(log: log), stop: stop, metrics: metrics,
            hooks: WorkerFailpoints.hooks(environment, logger: logger), logger: logger)
        try worker.run()
    }

    /// Raises the soft limit on open descriptors to the hard one (connections, image files and archives all take
    /// descriptors); returns the new limit when it changed.
    static func raiseOpenFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return nil }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return Int(limit.rlim_cur)
    }

    /// The local files tasks may read: under the roots the flag or the environment name, or anywhere.
    private func localFiles(_ environment: [String: String]) throws -> LocalFiles {
        let text = Setting.imageRoots.resolve(imageRoots, environment: environment)
        let roots = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        do {
            return try LocalFiles(roots: roots)
        } catch {
            throw ValidationError("--image-roots: \(error)")
        }
    }

    private func resolvedAllowPrivateURLs(_ environment: [String: String]) throws -> Bool {
        if allowPrivateUrls { return true }
        let text = Setting.allowPrivateURLs.resolve(nil, environment: environment).lowercased()
        switch text {
        case "1", "true", "yes": return true
        case "0", "false", "no", "": return false
        default: throw ValidationError("INFMLLM_ALLOW_PRIVATE_URLS=\(text): use 1 or 0")
        }
    }

    /// The embedding cache the flags or the environment name, if any.
    private func openEmbeddingCache(_ environment: [String: String], log: (String) -> Void) throws
        -> DiskEmbeddingCache?
    {
        let directory = Setting.embeddingCache.resolve(embeddingCache, environment: environment)
        guard !directory.isEmpty else { return nil }
        let sizeText = Setting.embeddingCacheSize.resolve(embeddingCacheSize, environment: environment)
        // At least a megabyte: a smaller cache (20 meant as 20G) would hold nothing, and each write would evict
        // every entry of the directory the host's workers share.
        guard let size = ComputeOptions.bytes(sizeText), size >= 1 << 20 else {
            throw ValidationError(
                "--embedding-cache-size \(sizeText): use a size of at least 1M, in bytes or like 500M or 20G")
        }
        let cache = try DiskEmbeddingCache(directory: directory, maxBytes: size)
        log("visual tokens cached in \(directory) (up to \(byteCount(size)); \(byteCount(cache.bytes)) there now)")
        return cache
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
