// What a worker tells Prometheus: tasks by kind and outcome, batch sizes, per-phase latencies, tokens and images,
// model load time, resident memory, the queue depth as last seen, reconnects, and whether it is ready.

import Foundation
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
    private let readiness = ReadinessState()
    static let phases = ["decode_image", "vision", "prefill", "decode", "generate"]

    public init() {
        batchSizes = registry.makeValueHistogram(
            descriptor: Self.named("infmllm_batch_size", "Tasks per batch the model ran."),
            buckets: [1, 2, 4, 8, 16, 32, 64])
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
    }

    /// A task that ended: `outcome` done, reused or failed; failures by `reason` class (image, model, crashed,
    /// storage).
    func taskEnded(kind: String, outcome: String, reason: String = "") {
        registry.makeCounter(
            descriptor: Self.named("infmllm_tasks_total", "Tasks ended, by kind, outcome and failure reason class."),
            labels: [("kind", kind), ("outcome", outcome), ("reason", reason)]
        ).increment()
    }

    func batchRan(size: Int, tokens: Int) {
        batchSizes.record(Double(size))
        generatedTokens.increment(by: Int64(tokens))
        images.increment(by: Int64(size))
    }

    /// One task's phase timings in milliseconds, as results record them.
    func phasesTook(_ milliseconds: [String: Double]) {
        for phase in Self.phases {
            guard let value = milliseconds[phase] else { continue }
            registry.makeValueHistogram(
                descriptor: Self.named(
                    "infmllm_phase_seconds", "Seconds per task in each phase (per batch, as each task records it)."),
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
    // Invariant: both properties are only read and written while holding `lock`.
    private let lock = NSLock()
    private var model = false
    private var services: [String: Bool] = ["postgres": false, "rabbitmq": false]

    func set(model: Bool) { lock.withLock { self.model = model } }
    func set(service: String, reachable: Bool) { lock.withLock { services[service] = reachable } }
    var isReady: Bool { lock.withLock { model && services.values.allSatisfy { $0 } } }
}
