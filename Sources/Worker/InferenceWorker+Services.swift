// The worker's connections: every database and broker call retried with backoff after transient failures (with a
// new connection), the services' reachability for `/readyz`, and the periodic work (republishing unconfirmed
// tasks, reading the queue's depth).

import Foundation
import Jobs

extension InferenceWorker {
    /// Runs `body` on the store, reconnecting and retrying transient failures until it works or a stop is
    /// requested; with `evenWhenStopping`, also after a stop request (the commit of the tasks in hand). With
    /// `publishing`, `body` publishes too, and a failure may be the broker's, from which the publisher recovers on
    /// its own (a new connection): the store is then made anew only when its connection was lost.
    func withStore<T>(
        _ what: String, evenWhenStopping: Bool = false, publishing: Bool = false,
        _ body: (any TaskStore) throws -> T
    ) throws -> T {
        let result = try backoff.retry(
            what, stop: evenWhenStopping ? StopSignal() : stop, log: warn, isTransient: Backoff.isTransient,
            reconnect: {
                if publishing, store?.isHealthy == true { return }
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

    /// Retries publishing, which opens a new connection of its own after a failure. Not for a body that uses the
    /// store as well: its retries would keep the store's lost connection (`withStore(publishing:)` is for that).
    func withPublisher<T>(_ what: String, _ body: () throws -> T) throws -> T {
        try backoff.retry(what, stop: stop, log: warn, isTransient: Backoff.isTransient, reconnect: {}, body)
    }

    /// Lines about trouble the worker works around (retries, reconnections).
    func warn(_ message: String) { logger.warning("\(message)") }

    /// The reconciler (queued tasks whose messages were never confirmed, leases that expired, messages never
    /// delivered), every half grace period and at most once a minute; one worker at a time does it. When another
    /// holds it and it has not finished a run for ten intervals, that is logged and counted.
    func reconcileIfDue() {
        let interval = max(1, min(60, configuration.republishAfter / 2))
        let now = services.clock.now()
        guard now - lastReconcile >= interval, !stop.isRaised else { return }
        lastReconcile = now
        do {
            let reconciled = try withStore("reconciling", publishing: true) { store in
                try outbox.reconcile(
                    store: store, grace: configuration.republishAfter,
                    undeliveredAfter: configuration.undeliveredAfter,
                    maxAttempts: configuration.deliveryLimit + 1, holder: configuration.workerName)
            }
            guard let reconciled else {
                let idle = try withStore("reading the reconciler's last run") { try $0.reconcilerIdleSeconds() }
                if let idle, idle > 10 * max(interval, 60) {
                    metrics.reconcilerOverdue()
                    warn("the reconciler has not finished a run for \(Int(idle)) s (another worker holds its lock)")
                }
                return
            }
            metrics.reconcilerRan()
            if !reconciled.expired.isEmpty {
                let workers = Set(reconciled.expired.map(\.worker)).sorted().joined(separator: ", ")
                let ended = Dictionary(grouping: reconciled.expired, by: \.status).map { "\($1.count) \($0.rawValue)" }
                warn(
                    "ended \(reconciled.expired.count) running task(s) whose lease expired (worker \(workers)): "
                        + ended.sorted().joined(separator: ", "))
            }
            if reconciled.undelivered > 0 {
                warn(
                    "\(reconciled.undelivered) queued task(s) whose messages were lost (none seen for long) go out again"
                )
            }
            if reconciled.published > 0 {
                log("published \(reconciled.published) queued task(s) whose messages were never confirmed")
            }
        } catch {
            log("reconciling failed (tried again later): \(error)")
        }
    }

    /// Renews the leases of the tasks this worker runs, every third of the lease.
    func renewLeasesIfDue() {
        let now = services.clock.now()
        guard now - lastLeaseRenewal >= configuration.lease / 3 else { return }
        lastLeaseRenewal = now
        guard !scheduler.isIdle else { return }
        do {
            try withStore("renewing leases", evenWhenStopping: true) {
                try $0.renewLeases(worker: configuration.workerName, lease: configuration.lease)
            }
        } catch {
            log("renewing the leases of running tasks failed (tried again later): \(error)")
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
