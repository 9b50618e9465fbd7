// How many task messages a worker may hold unacknowledged. RabbitMQ closes a consumer's channel when a delivery
// stays unacknowledged longer than its `consumer_timeout` (30 minutes by default, one broker-wide setting in 3.10),
// and every message held comes back counted as a failed delivery. A message waits for the batch in hand and its own
// batch, so the worker holds at most what its model finishes in half the timeout, measured from its batches.

/// The prefetch and batch size that keep every held message within the broker's consumer timeout.
struct HoldingLimit {
    /// The broker's `consumer_timeout`, in seconds.
    let consumerTimeout: Double
    /// The prefetch and batch size asked for.
    let configuredPrefetch: Int
    let configuredBatchSize: Int
    /// Seconds the model spends per task in a batch: the slowest of recent batches, decaying slowly.
    private(set) var secondsPerTask: Double?

    init(consumerTimeout: Double, prefetch: Int, batchSize: Int) {
        self.consumerTimeout = consumerTimeout
        configuredPrefetch = max(1, prefetch)
        configuredBatchSize = max(1, batchSize)
    }

    /// Messages to hold: until a batch has been timed, one batch; then as many as half the timeout allows.
    var prefetch: Int {
        guard let secondsPerTask, secondsPerTask > 0 else { return min(configuredPrefetch, configuredBatchSize) }
        let fits = Int((consumerTimeout / 2 / secondsPerTask).rounded(.down))
        return max(1, min(configuredPrefetch, fits))
    }

    /// Tasks per batch: never more than the messages held.
    var batchSize: Int { min(configuredBatchSize, prefetch) }

    /// Whether a single task takes longer than half the timeout, so that even one held message risks it.
    var exceedsTimeout: Bool { (secondsPerTask ?? 0) * 2 > consumerTimeout }

    /// Takes in a finished batch: `seconds` from taking it up to its commit, for `tasks` tasks.
    mutating func observe(seconds: Double, tasks: Int) {
        guard tasks > 0, seconds.isFinite, seconds >= 0 else { return }
        let measured = seconds / Double(tasks)
        // A slower batch counts at once; faster ones bring the estimate down gradually.
        secondsPerTask = secondsPerTask.map { max(measured, 0.8 * $0 + 0.2 * measured) } ?? measured
    }
}
