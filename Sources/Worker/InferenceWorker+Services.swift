// The worker's connections: every database and broker call retried with backoff after transient failures (with a
// new connection), the services' reachability for `/readyz`, and the periodic work (republishing unconfirmed
// tasks, reading the queue's depth).

import Foundation
import Jobs

extension InferenceWorker {
    /// Runs `body` on the store, reconnecting and retrying transient failures until it works or a stop is
    /// requested; with `evenWhenStopping`, also after a stop request (the commit of the tasks in hand).
    func withStore<T>(_ what: String, evenWhenStopping: Bool = false, _ body: (any TaskStore) throws -> T) throws -> T {
        let result = try backoff.retry(
            what, stop: evenWhenStopping ? StopSignal() : stop, log: warn, isTransient: Backoff.isTransient,
            reconnect: {
                metrics.service("postgres", reachable: false)
                metrics.reconnected(to: "postgres")
                store = try services.makeStore()
            }
        ) {
            if store == nil || store?.isHealthy == false { store = try services.makeStore() }
            return try body(store!)
        }
        metrics.service("postgres", reachable: true)
        return result
    }

    func withQueue<T>(_ what: String, _ body: () throws -> T) throws -> T {
        let queue = services.queue
        let result = try backoff.retry(
            what, stop: stop, log: warn, isTransient: Backoff.isTransient,
            reconnect: {
                metrics.service("rabbitmq", reachable: false)
                metrics.reconnected(to: "rabbitmq")
                try queue.connect()
            }
        ) {
            if !queue.isConnected { try queue.connect() }
            return try body()
        }
        metrics.service("rabbitmq", reachable: true)
        return result
    }

    /// Retries publishing, which opens a new connection of its own after a failure.
    func withPublisher<T>(_ what: String, _ body: () throws -> T) throws -> T {
        try backoff.retry(what, stop: stop, log: warn, isTransient: Backoff.isTransient, reconnect: {}, body)
    }

    /// Lines about trouble the worker works around (retries, reconnections).
    func warn(_ message: String) { logger.warning("\(message)") }

    /// Publishes queued tasks whose messages were never confirmed (an `enqueue` that lost the broker after its
    /// commit, say), every half grace period at most once a minute; one worker at a time does it.
    func reconcileIfDue() {
        let interval = max(1, min(60, configuration.republishAfter / 2))
        let now = services.clock.now()
        guard now - lastReconcile >= interval, !stop.isRaised else { return }
        lastReconcile = now
        do {
            let published = try withStore("publishing unconfirmed tasks") { store in
                try withPublisher("publishing unconfirmed tasks") {
                    try outbox.reconcile(store: store, grace: configuration.republishAfter)
                }
            }
            if let published, published > 0 {
                log("published \(published) queued task(s) whose messages were never confirmed")
            }
        } catch {
            log("publishing unconfirmed tasks failed (tried again later): \(error)")
        }
    }

    /// Seconds between readings of the queue's depth for `infmllm_queue_depth`.
    static let queueDepthInterval = 5.0

    func readQueueDepthIfDue() {
        let now = services.clock.now()
        guard now - lastDepthRead >= Self.queueDepthInterval, !stop.isRaised else { return }
        lastDepthRead = now
        do {
            let state = try withPublisher("reading the queue depth") {
                try services.publisher.queueState(model: configuration.modelName)
            }
            metrics.queueDepthSeen(state.ready)
        } catch {
            log("reading the queue depth failed (tried again later): \(error)")
        }
    }
}
