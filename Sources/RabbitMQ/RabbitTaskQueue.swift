// A worker's consuming broker connection (its model's task lanes and its dead letters), rebuilt after any
// connection failure. A lock lets a stop handler return messages while the worker loop runs the model.
//
// Lanes: the model's high, normal and low queues each have a consumer. Of what has arrived, the highest lane's
// messages go first; once a lane's message has arrived, the consumers of the lanes below it are cancelled and their
// messages that arrived but were not taken go back to their queues, so that a worker never holds low messages while
// high ones wait (they would wait past the broker's consumer timeout). A cancelled lane is consumed again once every
// lane above it has no message ready.

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
    /// The consumer of each lane being consumed (a lane below one whose messages arrived has none).
    private var laneConsumerTags: [TaskPriority: String] = [:]
    /// The lane of every task consumer tag of this connection, cancelled ones included (their last deliveries may
    /// still be unread).
    private var laneOfTag: [String: TaskPriority] = [:]
    /// When the lanes that are not consumed were last checked for opening (seconds of `clock`).
    private var lanesChecked = 0.0
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
            round: Int(message.headers[Self.roundHeader]?.intValue ?? 0),
            priority: laneOfTag[message.consumerTag] ?? .normal, tag: message.deliveryTag, connection: generation)
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
            laneConsumerTags = [:]
            laneOfTag = [:]
            if !stopped { try subscribe(connection) }
            consumer = connection
            generation += 1
        }
    }

    /// Starts the consumers of every lane and of the dead letters (under the lock).
    private func subscribe(_ connection: AMQPConnection) throws {
        laneConsumerTags = [:]
        for lane in TaskPriority.lanes { try subscribe(lane, on: connection) }
        deadLetterConsumerTag = try connection.consume(topology.deadLetterQueue)
        deadLetterConsumerTags.insert(deadLetterConsumerTag)
    }

    /// Starts consuming `lane` (under the lock).
    private func subscribe(_ lane: TaskPriority, on connection: AMQPConnection) throws {
        let tag = try connection.consume(topology.queue(lane))
        laneConsumerTags[lane] = tag
        laneOfTag[tag] = lane
    }

    public func next(timeout: Double) throws -> Delivery? {
        try lock.withLock {
            guard let consumer else { throw AMQPError.library(operation: "consuming", message: "not connected") }
            lastRead = clock.now()
            do {
                // What has arrived, then (with nothing) a wait for the first; the highest lane's first.
                try drain(consumer)
                if pumped.isEmpty, timeout > 0, let message = try consumer.nextDelivery(timeout: timeout) {
                    pumped.append(delivery(message))
                    try drain(consumer)
                }
                try gateLanes(consumer)
                guard let best = pumped.indices.max(by: { pumped[$0].priority < pumped[$1].priority }) else {
                    return nil
                }
                // The earliest of the highest lane (max returns the last of equals).
                let first = pumped.firstIndex { $0.priority == pumped[best].priority }!
                return pumped.remove(at: first)
            } catch {
                // Consumers live on the channel: after any failure, start over on a new connection.
                self.consumer = nil
                throw error
            }
        }
    }

    /// Reads every delivery that has arrived into `pumped` (under the lock).
    private func drain(_ consumer: AMQPConnection) throws {
        for _ in 0..<4096 {
            guard let message = try consumer.nextDelivery(timeout: 0) else { return }
            pumped.append(delivery(message))
        }
    }

    /// Cancels the lanes below the highest one a task message has arrived from and returns their messages that were
    /// not taken; with none arrived, consumes again each cancelled lane whose higher lanes have no message ready,
    /// checking at most twice a second (under the lock).
    private func gateLanes(_ consumer: AMQPConnection) throws {
        let arrived = pumped.filter { !$0.isDeadLetter && laneConsumerTags[$0.priority] != nil }.map(\.priority)
        if let highest = arrived.max() {
            for lane in TaskPriority.lanes where lane < highest {
                guard let tag = laneConsumerTags.removeValue(forKey: lane) else { continue }
                try consumer.cancel(tag)
            }
        } else if laneConsumerTags.count < TaskPriority.lanes.count, clock.now() - lanesChecked >= 0.5 {
            lanesChecked = clock.now()
            var higherReady = false
            for lane in TaskPriority.lanes {
                if laneConsumerTags[lane] == nil && !higherReady { try subscribe(lane, on: consumer) }
                let ready = try consumer.queueCounts(topology.queue(lane)).messageCount
                higherReady = higherReady || ready > 0
            }
        }
        // Messages of cancelled lanes go back for when their lane is consumed again (or for another worker).
        let returned = pumped.filter { !$0.isDeadLetter && laneConsumerTags[$0.priority] == nil }
        guard !returned.isEmpty else { return }
        for delivery in returned { try consumer.reject(delivery.tag, requeue: true) }
        pumped.removeAll { !$0.isDeadLetter && laneConsumerTags[$0.priority] == nil }
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
                let lanes = laneConsumerTags
                for (_, tag) in lanes { try consumer.cancel(tag) }
                try consumer.cancel(deadLetterConsumerTag)
                for lane in lanes.keys { try subscribe(lane, on: consumer) }
                deadLetterConsumerTag = try consumer.consume(topology.deadLetterQueue)
                deadLetterConsumerTags.insert(deadLetterConsumerTag)
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
                for tag in Array(laneConsumerTags.values) + [deadLetterConsumerTag] where !tag.isEmpty {
                    try consumer.cancel(tag)
                }
                laneConsumerTags = [:]
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
