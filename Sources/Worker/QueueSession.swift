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
        consumer = connection
        publisher = try AMQPConnection(url: configuration.amqpURL)
    }

    func nextDelivery(timeout: Double) throws -> DeliveredMessage? {
        guard let consumer else { throw AMQPError.library(operation: "consuming", message: "not connected") }
        return try consumer.nextDelivery(timeout: timeout)
    }

    func ack(_ message: DeliveredMessage) throws {
        guard let consumer else { throw AMQPError.library(operation: "basic.ack", message: "not connected") }
        try consumer.ack(message.deliveryTag)
    }

    func requeue(_ message: DeliveredMessage) throws {
        guard let consumer else { return }
        try consumer.reject(message.deliveryTag, requeue: true)
    }

    /// Parks a message that cannot be a task in the rejected queue with `reason`, then acknowledges it.
    func reject(_ message: DeliveredMessage, reason: String) throws {
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
        try ack(message)
    }

    func close() {
        consumer = nil
        publisher = nil
    }
}
