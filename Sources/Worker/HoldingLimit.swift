// How many task messages a worker may hold unacknowledged. RabbitMQ closes a consumer's channel when a delivery
// stays unacknowledged longer than its `consumer_timeout` (30 minutes by default, one broker-wide setting in 3.10),
// and every message held comes back counted as a failed delivery. A message waits for the tasks ahead of it and its
// own, so the worker holds at most what its model finishes in half the timeout, measured as tasks finish.

/// The prefetch that keeps every held message within the broker's consumer timeout.
struct HoldingLimit {
    /// The broker's `consumer_timeout`, in seconds.
    let consumerTimeout: Double
    /// The prefetch asked for, and what is held until the first tasks have been timed.
    let configuredPrefetch: Int
    let initialPrefetch: Int
    /// Seconds of the model per finished task (the worker's throughput): the slowest of recent readings, decaying
    /// slowly.
    private(set) var secondsPerTask: Double?

    init(consumerTimeout: Double, prefetch: Int, initial: Int) {
        self.consumerTimeout = consumerTimeout
        configuredPrefetch = max(1, prefetch)
        initialPrefetch = max(1, min(configuredPrefetch, initial))
    }

    /// Messages to hold, when a message carries `tasksPerMessage` tasks on average.
    func prefetch(tasksPerMessage: Double) -> Int {
        guard let secondsPerTask, secondsPerTask > 0 else { return initialPrefetch }
        let tasks = consumerTimeout / 2 / secondsPerTask
        let messages = (tasks / max(1, tasksPerMessage)).rounded(.down)
        return max(1, min(configuredPrefetch, messages.isFinite ? Int(min(messages, 1e9)) : configuredPrefetch))
    }

    /// Whether one message's tasks take longer than half the timeout, so that even one held message risks it.
    func exceedsTimeout(tasksPerMessage: Double) -> Bool {
        (secondsPerTask ?? 0) * max(1, tasksPerMessage) * 2 > consumerTimeout
    }

    /// Takes in `tasks` tasks finished over the last `seconds`.
    mutating func observe(seconds: Double, tasks: Int) {
        guard tasks > 0, seconds.isFinite, seconds >= 0 else { return }
        let measured = seconds / Double(tasks)
        // A slower reading counts at once; faster ones bring the estimate down gradually.
        secondsPerTask = secondsPerTask.map { max(measured, 0.8 * $0 + 0.2 * measured) } ?? measured
    }
}
