// The exchanges and queues that carry task messages, declared the same way by the CLI and by every worker.

import Jobs

/// Names and settings of one model's task queue, its dead-letter queue and the shared queue of rejected messages.
///
/// Tasks are routed per model: the task exchange is direct, and each model has its own queue (`<prefix>.model.<key>`,
/// bound with the model's key), so a worker only ever receives tasks for the model it has loaded, and workers of
/// different models share one broker. The key is the last path component of the model as given to `enqueue --model`
/// and to `worker --model` (`/models/InfMLLM-7B` and `InfMLLM-7B` both route to `InfMLLM-7B`).
///
/// Each model has three lanes, for the jobs of each priority: its queue (normal), and `<queue>:high` and
/// `<queue>:low`, bound with `<key>:high` and `<key>:low` (RabbitMQ 3.10's quorum queues have no message priorities;
/// a model key never holds a colon, so no model's queue is another's lane). A worker consumes the highest lane with
/// messages ready.
///
/// A task queue is a durable quorum queue with an explicit delivery limit (RabbitMQ 3.10 has no default, so a message
/// that crashes every worker would otherwise be redelivered forever). Past the limit, and on a reject without
/// requeue, a message goes to the dead-letter exchange with at-least-once dead-lettering, which 3.10 honours only
/// together with `x-overflow: reject-publish`. Dead letters are routed by the model's key into the model's own
/// dead-letter queue (`<prefix>.dead.<key>`), which only that model's workers read, so one model's dead letters never
/// reach another model's workers; it has a delivery limit of its own, past which a dead letter is dropped (its task
/// is then found by the reconciler, from its lease or its age).
public struct TaskTopology: Sendable, Equatable {
    /// The prefix of every name.
    public var prefix: String
    public var exchange: String
    /// The model's task queue.
    public var queue: String
    /// The model's routing key.
    public var routingKey: String
    public var deadLetterExchange: String
    /// The model's dead-letter queue.
    public var deadLetterQueue: String
    /// Where workers park messages that cannot be tasks, with the reason in a header; nobody consumes it.
    public var rejectedQueue: String
    /// Deliveries allowed after the first one before a message is dead-lettered.
    public var deliveryLimit: Int

    /// The topology under the name `prefix` for `model` (`infmllm.tasks`, `infmllm.model.<key>`, `infmllm.dead`,
    /// `infmllm.dead.<key>`, `infmllm.tasks.rejected`).
    public init(prefix: String = "infmllm", model: String, deliveryLimit: Int = 5) {
        let key = Self.modelKey(model)
        self.prefix = prefix
        exchange = "\(prefix).tasks"
        queue = "\(prefix).model.\(key)"
        routingKey = key
        deadLetterExchange = "\(prefix).dead"
        deadLetterQueue = "\(prefix).dead.\(key)"
        rejectedQueue = "\(prefix).tasks.rejected"
        self.deliveryLimit = deliveryLimit
    }

    /// The model's queue for the lane of `priority`: its queue for normal, with `:high` or `:low` after it.
    public func queue(_ priority: TaskPriority) -> String {
        priority == .normal ? queue : "\(queue):\(priority.rawValue)"
    }

    /// The routing key of the lane of `priority`.
    public func routingKey(_ priority: TaskPriority) -> String {
        priority == .normal ? routingKey : "\(routingKey):\(priority.rawValue)"
    }

    /// The routing key of `model` (`ModelKey.of`).
    public static func modelKey(_ model: String) -> String { ModelKey.of(model) }

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

    /// Declares the exchanges, the model's queue lanes and dead-letter queue, the rejected queue and their
    /// bindings; declaring an existing, identical topology changes nothing. Every lane dead-letters into the model's
    /// dead-letter queue.
    public func declare(on connection: AMQPConnection) throws {
        try declareShared(on: connection)
        try connection.declareExchange(exchange)
        for priority in TaskPriority.lanes {
            try connection.declareQueue(queue(priority), arguments: queueArguments)
            try connection.bindQueue(queue(priority), exchange: exchange, routingKey: routingKey(priority))
        }
        try connection.declareQueue(deadLetterQueue, arguments: deadLetterQueueArguments)
        try connection.bindQueue(deadLetterQueue, exchange: deadLetterExchange, routingKey: routingKey)
    }

    /// The dead-letter queue's arguments: a quorum queue with the same delivery limit as the task queue.
    public var deadLetterQueueArguments: [(String, AMQPValue)] {
        [("x-queue-type", .string("quorum")), ("x-delivery-limit", .int(Int64(deliveryLimit)))]
    }

    /// Deletes the model's queue lanes and dead-letter queue, with their messages: what `declare` made for this model
    /// alone.
    public func delete(on connection: AMQPConnection) throws {
        for priority in TaskPriority.lanes { try connection.deleteQueue(queue(priority)) }
        try connection.deleteQueue(deadLetterQueue)
    }

    /// Deletes what every model under the prefix shares: the rejected queue and the two exchanges.
    public func deleteShared(on connection: AMQPConnection) throws {
        try connection.deleteQueue(rejectedQueue)
        try connection.deleteExchange(exchange)
        try connection.deleteExchange(deadLetterExchange)
    }

    /// Declares what every model shares: the dead-letter exchange and the rejected queue.
    public func declareShared(on connection: AMQPConnection) throws {
        try connection.declareExchange(deadLetterExchange)
        try connection.declareQueue(rejectedQueue, arguments: [("x-queue-type", .string("quorum"))])
    }
}
