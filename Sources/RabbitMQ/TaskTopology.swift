// The exchanges and queues that carry task messages, declared the same way by the CLI and by every worker.

/// Names and settings of the task queue and its dead-letter queue.
///
/// The task queue is a durable quorum queue with an explicit delivery limit (RabbitMQ 3.10 has no default, so a
/// message that crashes every worker would otherwise be redelivered forever). Past the limit, and on a reject
/// without requeue, a message goes to the dead-letter exchange with at-least-once dead-lettering, which 3.10
/// honours only together with `x-overflow: reject-publish`.
public struct TaskTopology: Sendable, Equatable {
    public var exchange: String
    public var queue: String
    public var routingKey: String
    public var deadLetterExchange: String
    public var deadLetterQueue: String
    /// Deliveries allowed after the first one before a message is dead-lettered.
    public var deliveryLimit: Int

    /// The topology under the name `prefix` (`infmllm.tasks`, `infmllm.dead`, `infmllm.tasks.dead`).
    public init(prefix: String = "infmllm", deliveryLimit: Int = 5) {
        exchange = "\(prefix).tasks"
        queue = "\(prefix).tasks"
        routingKey = "task"
        deadLetterExchange = "\(prefix).dead"
        deadLetterQueue = "\(prefix).tasks.dead"
        self.deliveryLimit = deliveryLimit
    }

    /// The task queue's arguments. Changing any of them for an existing queue makes the broker refuse the
    /// declaration (406), so they are part of the deployment's contract.
    public var queueArguments: [(String, AMQPValue)] {
        [
            ("x-queue-type", .string("quorum")),
            ("x-delivery-limit", .int(Int64(deliveryLimit))),
            ("x-dead-letter-exchange", .string(deadLetterExchange)),
            ("x-dead-letter-routing-key", .string(routingKey)),
            ("x-dead-letter-strategy", .string("at-least-once")),
            ("x-overflow", .string("reject-publish")),
        ]
    }

    /// Declares both exchanges and queues and their bindings; declaring an existing, identical topology changes nothing.
    public func declare(on connection: AMQPConnection) throws {
        try connection.declareExchange(deadLetterExchange)
        try connection.declareQueue(deadLetterQueue, arguments: [("x-queue-type", .string("quorum"))])
        try connection.bindQueue(deadLetterQueue, exchange: deadLetterExchange, routingKey: routingKey)
        try connection.declareExchange(exchange)
        try connection.declareQueue(queue, arguments: queueArguments)
        try connection.bindQueue(queue, exchange: exchange, routingKey: routingKey)
    }
}
