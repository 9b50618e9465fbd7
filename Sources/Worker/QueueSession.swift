// The worker's two broker connections: one consuming (tasks and dead letters), one publishing rejected
// messages with their reason. Both are rebuilt after any connection failure.

import Foundation
import Jobs
import RabbitMQ

/// Owns the worker's AMQP connections. Used only by the worker loop's thread.
final class QueueSession {
    let configuration: WorkerConfiguration
    private(set) var consumer: AMQPConnection?
    private var publisher: AMQPConnection?
    private(set) var taskConsumerTag = ""
    private(set) var deadLetterConsumerTag = ""
    /// Counts connections: delivery tags are only valid on the connection that received them.
    private(set) var generation = 0
    /// Where messages that cannot be tasks go, with an `x-infmllm-error` header (nobody consumes it).
    var rejectedQueue: String { configuration.topology.queue + ".rejected" }

    init(configuration: WorkerConfiguration) {
        self.configuration = configuration
    }

    func connect() throws {
        consumer = nil
        publisher = nil
        let connection = try AMQPConnection(url: configuration.amqpURL)
        try configuration.topology.declare(on: connection)
        try connection.declareQueue(rejectedQueue, arguments: [("x-queue-type", .string("quorum"))])
        try connection.setPrefetch(configuration.prefetch)
        taskConsumerTag = try connection.consume(configuration.topology.queue)
        deadLetterConsumerTag = try connection.consume(configuration.topology.deadLetterQueue)
        publisher = try AMQPConnection(url: configuration.amqpURL)
        consumer = connection
        generation += 1
    }

    /// A message and the connection generation it arrived on.
    struct Delivery {
        let message: DeliveredMessage
        let generation: Int
        var consumerTag: String { message.consumerTag }
        var body: [UInt8] { message.body }
        var headers: [String: AMQPValue] { message.headers }
    }

    func nextDelivery(timeout: Double) throws -> Delivery? {
        guard let consumer else { throw AMQPError.library(operation: "consuming", message: "not connected") }
        do {
            return try consumer.nextDelivery(timeout: timeout).map { Delivery(message: $0, generation: generation) }
        } catch {
            // Consumers live on the channel: after any failure, start over on a new connection.
            self.consumer = nil
            throw error
        }
    }

    /// Acknowledges `delivery` if its connection is still the current one; otherwise the broker has already put
    /// it back in the queue and will deliver it again (the work is committed, so that redelivery only acks).
    func ack(_ delivery: Delivery) throws {
        guard let consumer, delivery.generation == generation else { return }
        do {
            try consumer.ack(delivery.message.deliveryTag)
        } catch {
            self.consumer = nil
            throw error
        }
    }

    /// Parks a message that cannot be a task in the rejected queue with `reason`, then acknowledges it.
    func reject(_ delivery: Delivery, reason: String) throws {
        let message = delivery.message
        guard let publisher else {
            throw AMQPError.library(operation: "publishing a rejected message", message: "not connected")
        }
        try publisher.publish([
            OutgoingMessage(
                exchange: "", routingKey: rejectedQueue, body: message.body,
                contentType: message.contentType ?? "application/octet-stream",
                headers: [
                    ("x-infmllm-error", .string(reason)), ("x-infmllm-worker", .string(configuration.workerName)),
                ])
        ])
        try ack(delivery)
    }

    func close() {
        consumer = nil
        publisher = nil
    }
}
