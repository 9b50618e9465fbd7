// Taking single messages from a queue (basic.get) and settling them with ack or reject.

import CRabbitMQ

extension AMQPConnection {
    /// Takes the next ready message from `queue` without auto-ack, or returns nil when the queue is empty.
    public func get(from queue: String) throws -> DeliveredMessage? {
        let reply = withAMQPBytes(queue) { amqp_basic_get(connectionState, channelID, $0, 0) }
        try check(reply, "basic.get from \(queue)")
        guard reply.reply.id == AMQPMethod.basicGetOK else { return nil }
        let ok = reply.reply.decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        var message = amqp_message_t()
        try check(amqp_read_message(connectionState, channelID, &message, 0), "reading a message from \(queue)")
        defer { amqp_destroy_message(&message) }
        return DeliveredMessage(
            message, deliveryTag: ok.delivery_tag, redelivered: ok.redelivered != 0, consumerTag: "")
    }

    /// Acknowledges a delivered message: the broker forgets it.
    public func ack(_ deliveryTag: UInt64) throws {
        let status = amqp_basic_ack(connectionState, channelID, deliveryTag, 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.library(operation: "basic.ack \(deliveryTag)", message: Self.message(for: status))
        }
    }

    /// Rejects a delivered message: requeued for another delivery, or dead-lettered when `requeue` is false.
    public func reject(_ deliveryTag: UInt64, requeue: Bool) throws {
        let status = amqp_basic_nack(connectionState, channelID, deliveryTag, 0, requeue ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.library(operation: "basic.nack \(deliveryTag)", message: Self.message(for: status))
        }
    }
}

extension DeliveredMessage {
    /// A copy of a librabbitmq message's body, content type and headers.
    init(_ message: amqp_message_t, deliveryTag: UInt64, redelivered: Bool, consumerTag: String) {
        let body = message.body.bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: message.body.len)) } ?? []
        let flags = message.properties._flags
        let headers =
            flags & amqp_flags_t(AMQP_BASIC_HEADERS_FLAG) != 0 ? decodeAMQPTable(message.properties.headers) : [:]
        let contentType =
            flags & amqp_flags_t(AMQP_BASIC_CONTENT_TYPE_FLAG) != 0
            ? string(from: message.properties.content_type) : nil
        self.init(
            deliveryTag: deliveryTag, redelivered: redelivered, body: body, contentType: contentType, headers: headers,
            consumerTag: consumerTag)
    }
}
