// What a worker tells Prometheus: tasks by kind and outcome, rows per model step, per-phase latencies, tokens and
// images, the scheduler's vision passes, embedding-cache and prefix hits, prompt positions beside decoding rows,
// preemptions, model load time, resident memory, the queue depth as last seen, reconnects, and whether it is ready.

import Foundation
import Generation
import Jobs
import Prometheus

/// A worker's metrics, in Prometheus' registry. Thread-safe.
public final class WorkerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let batchSizes: ValueHistogram
    private let modelLoad: Gauge
    private let residentMemory: Gauge
    private let queueDepth: Gauge
    private let generatedTokens: Counter
    private let images: Counter
    private let steps: Counter
    private let visionImages: Counter
    private let embeddingCacheHits: Counter
    private let embeddingCacheMisses: Counter
    private let prefixesShared: Counter
    private let prefixesComputed: Counter
    private let preemptions: Counter
    private let promptPositionsAlone: Counter
    private let promptPositionsBesideDecoding: Counter
    private let reconcilerRuns: Counter
    private let reconcilerOverdueCount: Counter
    private let readiness = ReadinessState()
    static let phases = ["decode_image", "vision", "prefill", "decode", "generate"]

    public init() {
        batchSizes = registry.makeValueHistogram(
            descriptor: Self.named("infmllm_batch_size", "Sequences (beams counted each) in each model step."),
            buckets: [1, 2, 4, 8, 16, 32, 64, 128])
        modelLoad = registry.makeGauge(
            descriptor: Self.named("infmllm_model_load_seconds", "Seconds the model took to load."))
        residentMemory = registry.makeGauge(
            descriptor: Self.named("infmllm_resident_memory_bytes", "The worker's resident memory when scraped."))
        queueDepth = registry.makeGauge(
            descriptor: Self.named(
                "infmllm_queue_depth", "Ready messages in the worker's model queue, read every 5 s."))
        generatedTokens = registry.makeCounter(
            descriptor: Self.named("infmllm_generated_tokens_total", "Tokens generated for finished tasks."))
        images = registry.makeCounter(
            descriptor: Self.named("infmllm_images_total", "Images the model ran on (one per finished task)."))
        steps = registry.makeCounter(descriptor: Self.named("infmllm_model_steps_total", "Model steps run."))
        visionImages = registry.makeCounter(
            descriptor: Self.named(
                "infmllm_vision_images_total", "Images run through the vision encoder (each once, however many tasks).")
        )
        let cache = Self.named(
            "infmllm_embedding_cache_total", "Images looked up in the visual-embedding cache, by result (hit, miss).")
        embeddingCacheHits = registry.makeCounter(descriptor: cache, labels: [("result", "hit")])
        embeddingCacheMisses = registry.makeCounter(descriptor: cache, labels: [("result", "miss")])
        let prefixes = Self.named(
            "infmllm_prompt_prefixes_total",
            "Tasks started on a prompt prefix (image and the text before it) computed for an earlier task (shared), "
                + "and prefixes computed (computed).")
        prefixesShared = registry.makeCounter(descriptor: prefixes, labels: [("result", "shared")])
        prefixesComputed = registry.makeCounter(descriptor: prefixes, labels: [("result", "computed")])
        reconcilerRuns = registry.makeCounter(
            descriptor: Self.named("infmllm_reconciler_runs_total", "Reconciler runs this worker finished."))
        reconcilerOverdueCount = registry.makeCounter(
            descriptor: Self.named(
                "infmllm_reconciler_overdue_total",
                "Times this worker found the reconciler held by another and without a finished run for too long."))
        preemptions = registry.makeCounter(
            descriptor: Self.named(
                "infmllm_preemptions_total", "Sequences set back for key/value memory, to be computed again."))
        let positions = Self.named(
            "infmllm_prompt_positions_total",
            "Prompt positions computed, by the steps they ran in: beside decoding rows, sharing their weight reads "
                + "(decoding), or in steps without them (prompt).")
        promptPositionsAlone = registry.makeCounter(descriptor: positions, labels: [("step", "prompt")])
        promptPositionsBesideDecoding = registry.makeCounter(descriptor: positions, labels: [("step", "decoding")])
    }

    /// A task that ended: `outcome` done, reused or failed; failures by `reason` class (image, model, crashed,
    /// storage).
    func taskEnded(kind: String, outcome: String, reason: String = "") {
        registry.makeCounter(
            descriptor: Self.named("infmllm_tasks_total", "Tasks ended, by kind, outcome and failure reason class."),
            labels: [("kind", kind), ("outcome", outcome), ("reason", reason)]
        ).increment()
    }

    /// A task queued again to read its image later (not an end: it is counted again when it ends).
    func taskReadLater(kind: String) {
        registry.makeCounter(
            descriptor: Self.named(
                "infmllm_tasks_read_later_total", "Tasks queued again to read their image later, by kind."),
            labels: [("kind", kind)]
        ).increment()
    }

    /// A model step over `rows` sequences, in which `finished` tasks ended with `tokens` tokens between them.
    func stepRan(rows: Int, tokens: Int, finished: Int) {
        batchSizes.record(Double(rows))
        steps.increment()
        generatedTokens.increment(by: Int64(tokens))
        images.increment(by: Int64(finished))
    }

    /// The scheduler's counts since `earlier`.
    func schedulerCounted(_ now: Scheduler.Statistics, since earlier: Scheduler.Statistics) {
        visionImages.increment(by: Int64(now.imagesEncoded - earlier.imagesEncoded))
        embeddingCacheHits.increment(by: Int64(now.embeddingCacheHits - earlier.embeddingCacheHits))
        embeddingCacheMisses.increment(by: Int64(now.embeddingCacheMisses - earlier.embeddingCacheMisses))
        prefixesShared.increment(by: Int64(now.prefixHits - earlier.prefixHits))
        prefixesComputed.increment(by: Int64(now.prefixesComputed - earlier.prefixesComputed))
        preemptions.increment(by: Int64(now.preemptions - earlier.preemptions))
        let beside = now.promptPositionsBesideDecoding - earlier.promptPositionsBesideDecoding
        promptPositionsBesideDecoding.increment(by: Int64(beside))
        promptPositionsAlone.increment(by: Int64(now.promptPositions - earlier.promptPositions - beside))
    }

    /// One task's phase timings in milliseconds, as results record them.
    func phasesTook(_ milliseconds: [String: Double]) {
        for phase in Self.phases {
            guard let value = milliseconds[phase] else { continue }
            registry.makeValueHistogram(
                descriptor: Self.named(
                    "infmllm_phase_seconds",
                    "Seconds of work per task in each phase (shared work divided among the tasks it served)."),
                labels: [("phase", phase)],
                buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
            ).record(value / 1000)
        }
    }

    func reconnected(to service: String) {
        registry.makeCounter(
            descriptor: Self.named("infmllm_reconnects_total", "Reconnections after a lost connection, by service."),
            labels: [("service", service)]
        ).increment()
    }

    public func modelLoaded(seconds: Double) {
        modelLoad.set(to: seconds)
        readiness.set(model: true)
    }

    func queueDepthSeen(_ count: Int) { queueDepth.set(to: Double(count)) }

    func service(_ name: String, reachable: Bool) { readiness.set(service: name, reachable: reachable) }

    /// A metric's name and help text; the name carries its unit (`_seconds`, `_bytes`, `_total`) itself.
    private static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Whether the model is loaded and both services answered last time.
    public var isReady: Bool { readiness.isReady }

    /// Seconds the worker's loop may go without a round, and the broker's consumer may stay lost, before `/healthz`
    /// fails so that an orchestrator restarts the worker.
    public static let stallBound: Double = 900
    public static let consumerLostBound: Double = 300

    func reconcilerRan() { reconcilerRuns.increment() }
    func reconcilerOverdue() { reconcilerOverdueCount.increment() }

    /// A round of the worker's loop began.
    func loopRan() { readiness.beat() }

    /// Why the worker should be restarted, or nil while it is alive: its loop has not run for `stallBound`
    /// seconds, or its broker consumer has been lost (reconnecting without success) for `consumerLostBound`.
    public func livenessProblem(now: Double = SystemClock().now()) -> String? {
        let (lastRound, lostSince) = readiness.liveness
        if let lastRound, now - lastRound > Self.stallBound {
            return "the worker's loop has not run for \(Int(now - lastRound)) s"
        }
        if let lostSince, now - lostSince > Self.consumerLostBound {
            return "the broker consumer has been lost for \(Int(now - lostSince)) s"
        }
        return nil
    }

    /// The exposition in Prometheus' text format, with the resident memory read now.
    public func exposition() -> String {
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        {
            residentMemory.set(to: pages * Double(sysconf(Int32(_SC_PAGESIZE))))
        }
        return registry.emitToString()
    }
}

/// The model and service flags behind `/readyz`.
private final class ReadinessState: @unchecked Sendable {
    // Invariant: every property is only read and written while holding `lock`.
    private let lock = NSLock()
    private var model = false
    private var services: [String: Bool] = ["postgres": false, "rabbitmq": false]
    private var lastRound: Double?
    private var consumerLostSince: Double?

    func set(model: Bool) { lock.withLock { self.model = model } }
    func set(service: String, reachable: Bool) {
        lock.withLock {
            services[service] = reachable
            if service == "rabbitmq" {
                consumerLostSince = reachable ? nil : (consumerLostSince ?? SystemClock().now())
            }
        }
    }
    var isReady: Bool { lock.withLock { model && services.values.allSatisfy { $0 } } }
    func beat() { lock.withLock { lastRound = SystemClock().now() } }
    var liveness: (lastRound: Double?, consumerLostSince: Double?) { lock.withLock { (lastRound, consumerLostSince) } }
}
