// Publishing task messages (with confirms), parking messages that cannot be tasks, and reading a model queue's
// state, on one connection opened when needed and dropped after a broker failure.

import Jobs

/// The `TaskPublisher` of `enqueue`, `retry` and workers on RabbitMQ. One caller at a time.
public final class RabbitTaskPublisher: TaskPublisher {
    /// The broker's nodes, tried in turn.
    public let urls: [AMQPURL]
    public let prefix: String
    public let deliveryLimit: Int
    /// The `connection_name` of its connection: the program, its role and its name.
    public let connectionName: String?
    private var connection: AMQPConnection?
    /// Models whose queues this connection has declared.
    private var declared: Set<String> = []

    /// Connections made, so that after a failure the next node is tried first.
    private var attempts = 0

    public init(urls: [AMQPURL], prefix: String, deliveryLimit: Int, connectionName: String? = nil) {
        self.connectionName = connectionName
        self.urls = urls
        self.prefix = prefix
        self.deliveryLimit = deliveryLimit
    }

    private func topology(_ model: String) -> TaskTopology {
        TaskTopology(prefix: prefix, model: model, deliveryLimit: deliveryLimit)
    }

    public func publish(_ messages: [TaskMessage], model: String, priority: TaskPriority, round: Int) throws {
        guard !messages.isEmpty else { return }
        let topology = topology(model)
        try withConnection { connection in
            if !declared.contains(topology.routingKey) {
                try topology.declare(on: connection)
                declared.insert(topology.routingKey)
            }
            let headers: [(String, AMQPValue)] = round > 0 ? [(RabbitTaskQueue.roundHeader, .int(Int64(round)))] : []
            try connection.publish(
                messages.map {
                    OutgoingMessage(
                        exchange: topology.exchange, routingKey: topology.routingKey(priority), body: $0.encoded(),
                        headers: headers)
                })
        }
    }

    /// Publishes the message as it came to the rejected queue every model shares, with `x-infmllm-error` and
    /// `x-infmllm-worker` headers.
    public func park(_ delivery: Delivery, reason: String, worker: String) throws {
        let queue = topology("_").rejectedQueue
        try withConnection { connection in
            try connection.publish([
                OutgoingMessage(
                    exchange: "", routingKey: queue, body: delivery.body,
                    contentType: delivery.contentType ?? "application/octet-stream",
                    headers: [("x-infmllm-error", .string(reason)), ("x-infmllm-worker", .string(worker))])
            ])
        }
    }

    public func queueState(model: String) throws -> (ready: Int, consumers: Int) {
        let topology = topology(model)
        return try withConnection { connection in
            // Passive declares; a lane no worker or enqueue has declared yet (a deployment from before lanes) is
            // empty. A worker consumes one lane at a time: the consumers of all lanes are the model's.
            var ready = 0, consumers = 0
            for lane in TaskPriority.lanes {
                do {
                    let counts = try connection.queueCounts(topology.queue(lane))
                    ready += counts.messageCount
                    consumers += counts.consumerCount
                } catch AMQPError.closedByBroker(_, 404, _) where lane != .normal {
                    continue
                }
            }
            return (ready, consumers)
        }
    }

    /// Runs `body` on the connection, opened when there is none; a broker failure drops it, to be opened again on
    /// the next call.
    private func withConnection<T>(_ body: (AMQPConnection) throws -> T) throws -> T {
        do {
            let connection: AMQPConnection
            if let open = self.connection {
                connection = open
            } else {
                attempts += 1
                connection = try AMQPConnection.first(of: urls, from: attempts - 1, name: connectionName)
            }
            self.connection = connection
            return try body(connection)
        } catch let error as AMQPError {
            connection = nil
            declared = []
            throw error
        }
    }
}
