// Consuming: a prefetch limit, consumers on queues, and waiting for the next delivery with a timeout.

import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#endif

extension AMQPConnection {
    /// At most `count` unacknowledged deliveries on this channel at a time.
    public func setPrefetch(_ count: Int) throws {
        amqp_basic_qos(connectionState, channelID, 0, UInt16(clamping: count), 0)
        try check(amqp_get_rpc_reply(connectionState), "basic.qos \(count)")
    }

    /// Starts consuming `queue` with manual acknowledgement; returns the consumer tag the broker assigned.
    @discardableResult
    public func consume(_ queue: String) throws -> String {
        let ok = withAMQPBytes(queue) { queueBytes in
            amqp_basic_consume(connectionState, channelID, queueBytes, amqp_empty_bytes, 0, 0, 0, amqp_empty_table)
        }
        guard let ok else {
            try check(amqp_get_rpc_reply(connectionState), "basic.consume \(queue)")
            throw AMQPError.library(operation: "basic.consume \(queue)", message: "no consume-ok")
        }
        return string(from: ok.pointee.consumer_tag)
    }

    /// Stops the consumer `consumerTag`: the broker sends nothing more to it. Deliveries that arrived before the
    /// broker's answer stay readable with `nextDelivery` and unacknowledged until settled.
    public func cancel(_ consumerTag: String) throws {
        let ok = withAMQPBytes(consumerTag) { amqp_basic_cancel(connectionState, channelID, $0) }
        guard ok != nil else {
            try check(amqp_get_rpc_reply(connectionState), "basic.cancel \(consumerTag)")
            throw AMQPError.library(operation: "basic.cancel \(consumerTag)", message: "no cancel-ok")
        }
    }

    /// The next delivery to any of this channel's consumers, or nil when none arrives within `timeout` seconds.
    ///
    /// - Throws: `AMQPError` when the connection or channel fails (the caller reconnects), including a broker
    ///   cancel of the consumer (the queue was deleted).
    public func nextDelivery(timeout: Double) throws -> DeliveredMessage? {
        amqp_maybe_release_buffers(connectionState)
        var envelope = amqp_envelope_t()
        var wait = timeval(seconds: timeout)
        let reply = amqp_consume_message(connectionState, &envelope, &wait, 0)
        if reply.reply_type == AMQP_RESPONSE_NORMAL {
            defer { amqp_destroy_envelope(&envelope) }
            return DeliveredMessage(
                envelope.message, deliveryTag: envelope.delivery_tag, redelivered: envelope.redelivered != 0,
                consumerTag: string(from: envelope.consumer_tag))
        }
        if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT.rawValue {
            return nil
        }
        if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
            && reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue
        {
            // Something other than a delivery arrived: read it and deal with it.
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(connectionState, &frame, &wait)
            if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
            guard status == AMQP_STATUS_OK.rawValue else {
                if Self.brokenStatuses.contains(status) { markBroken() }
                throw AMQPError.library(operation: "reading a frame", message: Self.message(for: status))
            }
            if frame.frame_type == UInt8(AMQP_FRAME_METHOD) {
                switch frame.payload.method.id {
                case AMQPMethod.channelClose, AMQPMethod.connectionClose:
                    try handleBrokerClose(method: frame.payload.method, operation: "consuming")
                case AMQPMethod.basicCancel:
                    throw AMQPError.closedByBroker(
                        operation: "consuming", code: 0, text: "the broker cancelled the consumer")
                default:
                    return nil
                }
            }
            return nil
        }
        try check(reply, "consuming")
        return nil
    }
}
