// Everything that can go wrong between infmllm and RabbitMQ, with the operation that failed.

import Jobs

/// A failed AMQP operation. `isTransient` says whether reconnecting and retrying can help.
public enum AMQPError: ServiceError, CustomStringConvertible, Sendable {
    /// The URL could not be understood.
    case invalidURL(String, reason: String)
    /// The TCP connection or the login failed.
    case connectionFailed(target: String, message: String)
    /// A librabbitmq call failed with a library status (socket closed, timeout, ...).
    case library(operation: String, message: String)
    /// The broker closed the channel or connection, with its AMQP reply code and text (406 PRECONDITION_FAILED, ...).
    case closedByBroker(operation: String, code: Int, text: String)
    /// The broker refused (nacked) or returned a published message.
    case publishRejected(exchange: String, routingKey: String, reason: String)
    /// No answer came within the time allowed.
    case timedOut(operation: String, seconds: Double)

    public var description: String {
        switch self {
        case let .invalidURL(url, reason):
            "invalid AMQP URL \(Secrets.redacted(url)): \(reason)"
        case let .connectionFailed(target, message):
            "cannot connect to RabbitMQ at \(Secrets.redacted(target)): \(message)"
        case let .library(operation, message):
            "\(operation) failed: \(message)"
        case let .closedByBroker(operation, code, text):
            "RabbitMQ closed the channel during \(operation): \(code) \(text)"
        case let .publishRejected(exchange, routingKey, reason):
            "RabbitMQ did not accept a message for exchange \"\(exchange)\" routing key \"\(routingKey)\": \(reason)"
        case let .timedOut(operation, seconds):
            "\(operation) got no answer within \(seconds) s"
        }
    }

    /// Whether reconnecting may help. A broker that closed the channel for a bad request (4xx codes such as 406
    /// PRECONDITION_FAILED or 404 NOT_FOUND) will refuse the same request again; anything else is the link.
    /// The broker's `consumer_timeout` also closes the channel with 406, but it is about the delivery's age, not the
    /// request: a new connection works.
    public var isTransient: Bool {
        switch self {
        case .invalidURL, .publishRejected:
            false
        case let .closedByBroker(_, code, _):
            !(400..<500).contains(code) || isConsumerTimeout
        case .connectionFailed, .library, .timedOut:
            true
        }
    }

    /// Whether the broker closed the channel because a delivery stayed unacknowledged past its `consumer_timeout`.
    public var isConsumerTimeout: Bool {
        guard case let .closedByBroker(_, 406, text) = self else { return false }
        return text.contains("delivery acknowledgement") && text.contains("timed out")
    }
}
