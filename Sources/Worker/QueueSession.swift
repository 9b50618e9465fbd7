// The worker's consuming broker connection (its model's tasks and the shared dead letters), rebuilt after any
// connection failure; the worker publishes through its `TaskOutbox`. A lock lets the stop handler return unstarted
// messages while the worker loop runs the model.

import Foundation
import Jobs
import RabbitMQ

/// Owns the worker's consuming AMQP connection. Thread-safe: every call holds one lock, as librabbitmq needs one caller at a
/// time.
final class QueueSession: @unchecked Sendable {
    let configuration: WorkerConfiguration
    // Invariant: every property below is read and written only while holding `lock`.
    private let lock = NSLock()
    private var consumer: AMQPConnection?
    private var taskConsumerTag = ""
    /// Every dead-letter consumer tag of this connection (a prefetch change subscribes again under a new tag, and
    /// deliveries to the old one may still be unread).
    private var deadLetterConsumerTags: Set<String> = []
    private var deadLetterConsumerTag = ""
    /// Counts connections: delivery tags are only valid on the connection that received them.
    private var generation = 0
    /// Unacknowledged messages the broker may send at once (changed as batch timings come in).
    private var prefetch: Int
    /// After `stopConsuming`, nothing new is taken.
    private var stopped = false

    init(configuration: WorkerConfiguration, prefetch: Int) {
        self.configuration = configuration
        self.prefetch = prefetch
    }

    var isConnected: Bool { lock.withLock { consumer != nil } }

    /// The prefetch the consumers run with (or will, once reconnected).
    var prefetchCount: Int { lock.withLock { prefetch } }

    /// Whether `delivery` came on the current connection; the broker has taken back every message of an earlier one.
    func isCurrent(_ delivery: Delivery) -> Bool {
        lock.withLock { consumer != nil && delivery.generation == generation }
    }

    func connect() throws {
        try lock.withLock {
            consumer = nil
            let connection = try AMQPConnection(url: configuration.amqpURL)
            try configuration.topology.declare(on: connection)
            try connection.setPrefetch(prefetch)
            deadLetterConsumerTags = []
            if !stopped { try subscribe(connection) }
            consumer = connection
            generation += 1
        }
    }

    /// Starts both consumers (under the lock).
    private func subscribe(_ connection: AMQPConnection) throws {
        taskConsumerTag = try connection.consume(configuration.topology.queue)
        deadLetterConsumerTag = try connection.consume(configuration.topology.deadLetterQueue)
        deadLetterConsumerTags.insert(deadLetterConsumerTag)
    }

    /// A message and the connection generation it arrived on.
    struct Delivery: @unchecked Sendable {
        let message: DeliveredMessage
        let generation: Int
        /// Whether it came from the dead-letter queue (the broker gave up on it) rather than the task queue.
        let isDeadLetter: Bool
        var body: [UInt8] { message.body }
        var headers: [String: AMQPValue] { message.headers }
        /// Whether the broker delivered this message before (to a worker that did not acknowledge it).
        var isRedelivery: Bool { message.redelivered || message.deliveryCount > 0 }
    }

    func nextDelivery(timeout: Double) throws -> Delivery? {
        try lock.withLock {
            guard let consumer else { throw AMQPError.library(operation: "consuming", message: "not connected") }
            do {
                return try consumer.nextDelivery(timeout: timeout).map {
                    Delivery(
                        message: $0, generation: generation,
                        isDeadLetter: deadLetterConsumerTags.contains($0.consumerTag))
                }
            } catch {
                // Consumers live on the channel: after any failure, start over on a new connection.
                self.consumer = nil
                throw error
            }
        }
    }

    /// Limits the unacknowledged messages the broker sends from now on. RabbitMQ applies a prefetch only to
    /// consumers started after it, so both consumers start again; messages already delivered stay in hand.
    func setPrefetch(_ count: Int) throws {
        try lock.withLock {
            guard count != prefetch else { return }
            prefetch = count
            guard let consumer, !stopped else { return }
            do {
                try consumer.setPrefetch(count)
                try consumer.cancel(taskConsumerTag)
                try consumer.cancel(deadLetterConsumerTag)
                try subscribe(consumer)
            } catch {
                self.consumer = nil
                throw error
            }
        }
    }

    /// Acknowledges `delivery` if its connection is still the current one; otherwise the broker has already put
    /// it back in the queue and will deliver it again (the work is committed, so that redelivery only acks).
    func ack(_ delivery: Delivery) throws {
        try settle(delivery) { try $0.ack(delivery.message.deliveryTag) }
    }

    /// Returns `delivery` to its queue for another worker.
    func requeue(_ delivery: Delivery) throws {
        try settle(delivery) { try $0.reject(delivery.message.deliveryTag, requeue: true) }
    }

    private func settle(_ delivery: Delivery, _ body: (AMQPConnection) throws -> Void) throws {
        try lock.withLock {
            guard let consumer, delivery.generation == generation else { return }
            do { try body(consumer) } catch {
                self.consumer = nil
                throw error
            }
        }
    }

    /// Stops both consumers and returns every message delivered but not yet read; returns how many went back.
    /// Messages already read stay with their holder, who acknowledges or requeues them.
    func stopConsuming() throws -> Int {
        try lock.withLock {
            stopped = true
            guard let consumer else { return 0 }
            do {
                for tag in [taskConsumerTag, deadLetterConsumerTag] where !tag.isEmpty { try consumer.cancel(tag) }
                var returned = 0
                while let message = try consumer.nextDelivery(timeout: 0.05) {
                    try consumer.reject(message.deliveryTag, requeue: true)
                    returned += 1
                }
                return returned
            } catch {
                self.consumer = nil  // closing the connection returns the rest
                throw error
            }
        }
    }

    func close() {
        lock.withLock { consumer = nil }
    }
}
