// Publishing task messages so that none is lost between PostgreSQL and RabbitMQ: a task's row is committed first,
// its message published with a confirm, and then the row marked published. Whatever dies in between (the broker,
// the process), the reconciler finds the queued tasks without a confirmed message and publishes them again. A task
// published twice is harmless: the second delivery finds its result and is only acknowledged.

import Foundation
import Jobs
import Postgres
import RabbitMQ

/// Publishes and republishes task messages for `enqueue`, `retry` and workers, and is a worker's one publishing
/// connection besides (messages parked in the rejected queue, the queue's depth). Used by one thread at a time.
public final class TaskOutbox {
    public let amqpURL: AMQPURL
    public let prefix: String
    public let deliveryLimit: Int
    private var connection: AMQPConnection?
    /// Models whose queues this connection has declared.
    private var declared: Set<String> = []

    public init(amqpURL: AMQPURL, prefix: String, deliveryLimit: Int) {
        self.amqpURL = amqpURL
        self.prefix = prefix
        self.deliveryLimit = deliveryLimit
    }

    /// Publishes one message per task to `model`'s queue, waiting for the broker's confirms, and marks each chunk
    /// published as soon as it is confirmed. `headers` go on every message.
    public func publish(
        _ tasks: [(taskID: Int64, jobID: Int64)], model: String, store: PostgresJobStore,
        headers: [(String, AMQPValue)] = []
    ) throws {
        guard !tasks.isEmpty else { return }
        let topology = TaskTopology(prefix: prefix, model: model, deliveryLimit: deliveryLimit)
        try withConnection { connection in
            if !declared.contains(topology.routingKey) {
                try topology.declare(on: connection)
                declared.insert(topology.routingKey)
            }
            for start in stride(from: 0, to: tasks.count, by: 1000) {
                let chunk = tasks[start..<min(start + 1000, tasks.count)]
                try connection.publish(
                    chunk.map {
                        OutgoingMessage(
                            exchange: topology.exchange, routingKey: topology.routingKey,
                            body: TaskMessage(taskID: $0.taskID, jobID: $0.jobID).encoded(), headers: headers)
                    })
                try store.markPublished(chunk.map(\.taskID))
            }
        }
    }

    /// Publishes a message that cannot be a task to `queue` (a worker's rejected queue, already declared) as it
    /// came, with `headers` saying why, waiting for the broker's confirm.
    public func park(_ body: [UInt8], contentType: String, headers: [(String, AMQPValue)], in queue: String) throws {
        try withConnection { connection in
            try connection.publish([
                OutgoingMessage(
                    exchange: "", routingKey: queue, body: body, contentType: contentType, headers: headers)
            ])
        }
    }

    /// Messages ready in `queue` (not counting those delivered and unacknowledged).
    public func readyCount(of queue: String) throws -> Int {
        try withConnection { try $0.queueCounts(queue).messageCount }
    }

    /// Runs `body` on the connection, opened when there is none; a broker failure drops it, to be opened again on the
    /// next call.
    private func withConnection<T>(_ body: (AMQPConnection) throws -> T) throws -> T {
        do {
            let connection = try self.connection ?? AMQPConnection(url: amqpURL)
            self.connection = connection
            return try body(connection)
        } catch let error as AMQPError {
            connection = nil
            declared = []
            throw error
        }
    }

    /// Publishes the unconfirmed tasks of `job` (or of every job) queued at least `grace` seconds ago, a chunk at a
    /// time, holding the reconciler's lock.
    ///
    /// - Returns: how many were published, or nil when another reconciler holds the lock.
    @discardableResult
    public func reconcile(store: PostgresJobStore, grace: Double, job: Int64? = nil) throws -> Int? {
        try store.withReconcilerLock {
            var published = 0
            while true {
                let stranded = try store.unpublished(olderThan: grace, job: job, limit: 5000)
                for (model, tasks) in Dictionary(grouping: stranded, by: \.model) {
                    try publish(tasks.map { ($0.taskID, $0.jobID) }, model: model, store: store)
                }
                published += stranded.count
                if stranded.count < 5000 { return published }
            }
        }
    }
}
