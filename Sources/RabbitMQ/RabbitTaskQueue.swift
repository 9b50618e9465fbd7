// A worker's consuming broker connection (its model's task lanes and its dead letters), rebuilt after any
// connection failure. A lock lets a stop handler return messages while the worker loop runs the model.
//
// Lanes: a worker consumes one of its model's priority lanes at a time (and its dead letters), the highest with
// messages ready, checked through passive declares. It moves, up or down, once no delivery of a third lane is in
// hand: it holds at most the window of the lane it left besides its own, so the prefetch that keeps held messages
// within the broker's consumer timeout still holds, and no message is sent back (each return would count against its
// delivery limit). Messages that arrived from the lane it left are handed out after the current lane's.

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
    /// The lane being consumed and its consumer's tag.
    private var lane: (priority: TaskPriority, tag: String)?
    /// The lane of the task consumer tags of this connection, the last few cancelled ones included (their last
    /// deliveries may still be unread).
    private var laneOfTag: [String: TaskPriority] = [:]
    private var recentLaneTags: [String] = []
    /// When the lanes were last checked (seconds of `clock`).
    private var lanesChecked = -Double.infinity
    /// Task deliveries of this connection handed out and not yet settled, with their lanes (dead letters are not).
    private var outstanding: [UInt64: TaskPriority] = [:]
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
            lane = nil
            laneOfTag = [:]
            recentLaneTags = []
            outstanding = [:]
            lanesChecked = -Double.infinity
            if !stopped {
                try chooseLane(connection, idle: true)
                try subscribeDeadLetters(connection)
            }
            consumer = connection
            generation += 1
        }
    }

    /// Starts the dead letters' consumer (under the lock).
    private func subscribeDeadLetters(_ connection: AMQPConnection) throws {
        deadLetterConsumerTag = try connection.consume(topology.deadLetterQueue)
        deadLetterConsumerTags.insert(deadLetterConsumerTag)
    }

    /// Consumes `priority`'s lane instead of the current one (under the lock).
    private func consume(_ priority: TaskPriority, on connection: AMQPConnection) throws {
        if let lane { try connection.cancel(lane.tag) }
        let tag = try connection.consume(topology.queue(priority))
        lane = (priority, tag)
        laneOfTag[tag] = priority
        recentLaneTags.append(tag)
        // A cancelled consumer's deliveries have all been read long before a few more lane changes.
        while recentLaneTags.count > 16 { laneOfTag[recentLaneTags.removeFirst()] = nil }
    }

    /// Moves to the highest lane with messages ready once no delivery of a lane other than the current one is in
    /// hand (handed out and unsettled, or arrived and not handed out); with none ready anywhere, stays (the high lane
    /// to begin with). Checks at most every half second while idle and every two seconds while busy (under the lock).
    private func chooseLane(_ connection: AMQPConnection, idle: Bool) throws {
        guard !stopped, clock.now() - lanesChecked >= (idle ? 0.5 : 2) else { return }
        guard let current = lane?.priority else {
            lanesChecked = clock.now()
            return try consume(try highestReady(connection) ?? .high, on: connection)
        }
        let otherLaneInHand =
            outstanding.values.contains { $0 != current }
            || pumped.contains { !$0.isDeadLetter && $0.priority != current }
        guard !otherLaneInHand else { return }
        lanesChecked = clock.now()
        if let wanted = try highestReady(connection), wanted != current { try consume(wanted, on: connection) }
    }

    /// The highest lane with messages ready, if any (a passive declare per lane, from the highest down). A lane's
    /// queue deleted under the worker (404 NOT_FOUND, the channel closed with it) is a transient failure, not a
    /// permanent one: a new connection declares the queues again.
    private func highestReady(_ connection: AMQPConnection) throws -> TaskPriority? {
        for priority in TaskPriority.lanes {
            let queue = topology.queue(priority)
            let ready: Int
            do {
                ready = try connection.queueCounts(queue).messageCount
            } catch AMQPError.closedByBroker(_, 404, let text) {
                throw AMQPError.library(
                    operation: "checking the queue \(queue)",
                    message: "it is gone (\(text)); declaring it again on a new connection")
            }
            if ready > 0 { return priority }
        }
        return nil
    }

    public func next(timeout: Double) throws -> Delivery? {
        try lock.withLock {
            guard let consumer else { throw AMQPError.library(operation: "consuming", message: "not connected") }
            lastRead = clock.now()
            do {
                // What has arrived (the lanes checked first when due), then, with nothing, a wait for the first;
                // the highest lane's first.
                try drain(consumer)
                try chooseLane(consumer, idle: pumped.isEmpty && outstanding.isEmpty)
                if pumped.isEmpty, timeout > 0, let message = try consumer.nextDelivery(timeout: timeout) {
                    pumped.append(delivery(message))
                    try drain(consumer)
                }
                guard let highest = pumped.map(\.priority).max() else { return nil }
                let taken = pumped.remove(at: pumped.firstIndex { $0.priority == highest }!)
                if !taken.isDeadLetter { outstanding[taken.tag] = taken.priority }
                return taken
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

    /// The header that counts the rounds a dead-lettered message was sent again.
    public static let roundHeader = "x-infmllm-round"

    /// RabbitMQ applies a prefetch only to consumers started after it, so the lane's and the dead letters'
    /// consumers start again; messages already delivered stay in hand.
    public func setPrefetch(_ count: Int) throws {
        try lock.withLock {
            guard count != prefetchCount else { return }
            prefetchCount = count
            guard let consumer, !stopped else { return }
            do {
                try consumer.setPrefetch(count)
                if let lane { try self.consume(lane.priority, on: consumer) }
                try consumer.cancel(deadLetterConsumerTag)
                try subscribeDeadLetters(consumer)
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
            outstanding[delivery.tag] = nil
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
                for tag in [lane?.tag ?? "", deadLetterConsumerTag] where !tag.isEmpty { try consumer.cancel(tag) }
                lane = nil
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
