// Publishing with publisher confirms: a message counts as sent only once the broker has confirmed it.

import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#endif

extension AMQPConnection {
    /// Publishes `messages` and waits until the broker confirms every one of them.
    ///
    /// Messages are published mandatory, so one that no queue would receive is returned and reported instead of
    /// silently dropped. For a quorum queue the broker confirms only after a quorum has stored the message.
    /// - Throws: `AMQPError.publishRejected` for a message the broker nacked or returned, `timedOut` when
    ///   confirms do not arrive within `timeout` seconds.
    public func publish(_ messages: [OutgoingMessage]) throws {
        guard !messages.isEmpty else { return }
        try enableConfirms()
        var outstanding = Set<UInt64>()
        for message in messages {
            try send(message)
            outstanding.insert(publishTag)
            publishTag += 1
        }
        try awaitConfirms(of: &outstanding, for: messages[0])
    }

    private func enableConfirms() throws {
        guard !isConfirming else { return }
        amqp_confirm_select(connectionState, channelID)
        try check(amqp_get_rpc_reply(connectionState), "confirm.select")
        isConfirming = true
    }

    private func send(_ message: OutgoingMessage) throws {
        var properties = amqp_basic_properties_t()
        let status: Int32 = withAMQPBytes(message.contentType) { contentType in
            withAMQPTable(message.headers) { headers in
                properties._flags = amqp_flags_t(AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG)
                properties.content_type = contentType
                properties.delivery_mode = message.persistent ? 2 : 1
                if !message.headers.isEmpty {
                    properties._flags |= amqp_flags_t(AMQP_BASIC_HEADERS_FLAG)
                    properties.headers = headers
                }
                return withAMQPBytes(message.exchange) { exchange in
                    withAMQPBytes(message.routingKey) { routingKey in
                        message.body.withUnsafeBytes { body in
                            let bytes = amqp_bytes_t(
                                len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
                            return amqp_basic_publish(
                                connectionState, channelID, exchange, routingKey, 1, 0, &properties, bytes)
                        }
                    }
                }
            }
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            // A dead socket: closing politely would wait out the timeout twice for a peer that is gone.
            if Self.brokenStatuses.contains(status) { markBroken() }
            throw AMQPError.library(
                operation: "basic.publish to \(message.exchange)", message: Self.message(for: status))
        }
    }

    private func awaitConfirms(of outstanding: inout Set<UInt64>, for sample: OutgoingMessage) throws {
        var rejection: String?
        let deadline = monotonicSeconds() + timeout
        while !outstanding.isEmpty {
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else {
                throw AMQPError.timedOut(
                    operation: "publisher confirms (\(outstanding.count) outstanding)", seconds: timeout)
            }
            var frame = amqp_frame_t()
            var wait = timeval(seconds: remaining)
            let status = amqp_simple_wait_frame_noblock(connectionState, &frame, &wait)
            if status == AMQP_STATUS_TIMEOUT.rawValue { continue }
            guard status == AMQP_STATUS_OK.rawValue else {
                if Self.brokenStatuses.contains(status) { markBroken() }
                throw AMQPError.library(operation: "waiting for publisher confirms", message: Self.message(for: status))
            }
            guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { continue }
            let method = frame.payload.method
            switch method.id {
            case AMQPMethod.basicAck:
                let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                settle(ack.delivery_tag, multiple: ack.multiple != 0, in: &outstanding)
            case AMQPMethod.basicNack:
                let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
                settle(nack.delivery_tag, multiple: nack.multiple != 0, in: &outstanding)
                rejection = rejection ?? "the broker nacked it (a queue is full or unavailable)"
            case AMQPMethod.basicReturn:
                let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
                rejection = rejection ?? "returned as \(returned.reply_code) \(string(from: returned.reply_text))"
                // The returned message's header and body frames follow; read them so the stream stays in step.
                var message = amqp_message_t()
                if amqp_read_message(connectionState, frame.channel, &message, 0).reply_type == AMQP_RESPONSE_NORMAL {
                    amqp_destroy_message(&message)
                }
            case AMQPMethod.channelClose, AMQPMethod.connectionClose:
                try handleBrokerClose(method: method, operation: "basic.publish to \(sample.exchange)")
            default:
                continue
            }
        }
        if let rejection {
            throw AMQPError.publishRejected(exchange: sample.exchange, routingKey: sample.routingKey, reason: rejection)
        }
    }

    private func settle(_ tag: UInt64, multiple: Bool, in outstanding: inout Set<UInt64>) {
        if multiple {
            outstanding = outstanding.filter { $0 > tag }
        } else {
            outstanding.remove(tag)
        }
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
