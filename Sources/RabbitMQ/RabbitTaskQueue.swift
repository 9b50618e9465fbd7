// A worker's consuming broker connection (its model's tasks and the shared dead letters), rebuilt after any
// connection failure. A lock lets a stop handler return messages while the worker loop runs the model.

import Foundation
import Jobs

#if canImport(Glibc)
    import Glibc
#endif

/// The `TaskQueue` of a worker on RabbitMQ. Thread-safe: every call holds one lock, as librabbitmq needs one caller
/// at a time.
public final class RabbitTaskQueue: TaskQueue, @unchecked Sendable {
    /// The broker's nodes: a connection goes to the first that answers, starting after the last one that failed.
    public let urls: [AMQPURL]
    public let topology: TaskTopology
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
    private var prefetchCount: Int
    /// After `stopConsuming`, nothing new is taken.
    private var stopped = false
    /// Deliveries the keep-alive read while the worker was busy, handed out first.
    private var pumped: [Delivery] = []
    /// When the connection was last read (seconds of `clock`).
    private var lastRead = 0.0
    private let clock = SystemClock()

    /// Seconds between heartbeats on the consuming connection (0: none). librabbitmq sends and checks them inside
    /// its calls, which the worker makes between model steps: a step must take less than two intervals.
    public let heartbeat: Int
    /// The `connection_name` of the consuming connection.
    public let connectionName: String?

    public init(
        urls: [AMQPURL], topology: TaskTopology, prefetch: Int, heartbeat: Int = 30, connectionName: String? = nil
    ) {
        self.heartbeat = heartbeat
        self.connectionName = connectionName
        self.urls = urls
        self.topology = topology
        prefetchCount = prefetch
        if heartbeat > 0 { startKeepAlive() }
    }

    /// librabbitmq sends and checks heartbeats only inside its calls, and the worker makes none during a long model
    /// step or while it waits out a database outage: a thread of its own reads the connection whenever it has not
    /// been read for a quarter of the interval, keeping what arrives for `next`, so the broker never takes the
    /// worker's messages back just because it was busy.
    private func startKeepAlive() {
        Thread.detachNewThread { [weak self] in
            while true {
                guard let interval = self?.keepAliveInterval else { return }
                Thread.sleep(forTimeInterval: interval)
                guard let self else { return }
                self.keepAlive(idle: interval)
            }
        }
    }

    /// A quarter of the heartbeat agreed with the broker, which is `heartbeat` or the broker's own when that is
    /// shorter.
    private var keepAliveInterval: Double {
        let agreed = lock.withLock { consumer?.heartbeat ?? 0 }
        return Double(agreed > 0 ? min(agreed, heartbeat) : heartbeat) / 4
    }

    private func keepAlive(idle: Double) {
        lock.withLock {
            guard let consumer, clock.now() - lastRead >= idle else { return }
            lastRead = clock.now()
            do {
                guard let message = try consumer.nextDelivery(timeout: 0) else { return }
                if stopped {
                    try consumer.reject(message.deliveryTag, requeue: true)
                } else {
                    pumped.append(delivery(message))
                }
            } catch {
                self.consumer = nil  // the worker's next call reconnects
            }
        }
    }

    /// A delivery of the current connection (under the lock).
    private func delivery(_ message: DeliveredMessage) -> Delivery {
        Delivery(
            body: message.body, contentType: message.contentType,
            isDeadLetter: deadLetterConsumerTags.contains(message.consumerTag),
            isRedelivery: message.redelivered || message.deliveryCount > 0, deliveryCount: message.deliveryCount,
            round: Int(message.headers[Self.roundHeader]?.intValue ?? 0), tag: message.deliveryTag,
            connection: generation)
    }

    public var isConnected: Bool { lock.withLock { consumer != nil } }
    public var prefetch: Int { lock.withLock { prefetchCount } }

    public func isCurrent(_ delivery: Delivery) -> Bool {
        lock.withLock { consumer != nil && delivery.connection == generation }
    }

    public func connect() throws {
        try lock.withLock {
            consumer = nil
            pumped = []  // deliveries of the old connection: the broker has them back
            // After a failure, the next node first: the one that failed may be the one that is gone.
            let connection = try AMQPConnection.first(
                of: urls, from: generation, heartbeatSeconds: heartbeat, name: connectionName)
            try topology.declare(on: connection)
            try connection.setPrefetch(prefetchCount)
            deadLetterConsumerTags = []
            if !stopped { try subscribe(connection) }
            consumer = connection
            generation += 1
        }
    }

    /// Starts both consumers (under the lock).
    private func subscribe(_ connection: AMQPConnection) throws {
        taskConsumerTag = try connection.consume(topology.queue)
        deadLetterConsumerTag = try connection.consume(topology.deadLetterQueue)
        deadLetterConsumerTags.insert(deadLetterConsumerTag)
    }

    public func next(timeout: Double) throws -> Delivery? {
        try lock.withLock {
            guard let consumer else { throw AMQPError.library(operation: "consuming", message: "not connected") }
            if !pumped.isEmpty { return pumped.removeFirst() }
            lastRead = clock.now()
            do {
                return try consumer.nextDelivery(timeout: timeout).map(delivery)
            } catch {
                // Consumers live on the channel: after any failure, start over on a new connection.
                self.consumer = nil
                throw error
            }
        }
    }

    /// The header that counts the rounds a dead-lettered message was sent again.
    public static let roundHeader = "x-infmllm-round"

    /// RabbitMQ applies a prefetch only to consumers started after it, so both consumers start again; messages
    /// already delivered stay in hand.
    public func setPrefetch(_ count: Int) throws {
        try lock.withLock {
            guard count != prefetchCount else { return }
            prefetchCount = count
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

    public func ack(_ delivery: Delivery) throws {
        try settle(delivery) { try $0.ack(delivery.tag) }
    }

    public func requeue(_ delivery: Delivery) throws {
        try settle(delivery) { try $0.reject(delivery.tag, requeue: true) }
    }

    private func settle(_ delivery: Delivery, _ body: (AMQPConnection) throws -> Void) throws {
        try lock.withLock {
            guard let consumer, delivery.connection == generation else { return }
            do { try body(consumer) } catch {
                self.consumer = nil
                throw error
            }
        }
    }

    public func stopConsuming() throws -> Int {
        try lock.withLock {
            stopped = true
            guard let consumer else { return 0 }
            do {
                for tag in [taskConsumerTag, deadLetterConsumerTag] where !tag.isEmpty { try consumer.cancel(tag) }
                var returned = 0
                for delivery in pumped {
                    try consumer.reject(delivery.tag, requeue: true)
                    returned += 1
                }
                pumped = []
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

    public func close() {
        lock.withLock { consumer = nil }
    }
}
