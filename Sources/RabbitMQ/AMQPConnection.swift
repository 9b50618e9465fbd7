// The one owner of a librabbitmq connection: connects, declares, publishes with confirms, gets and acks.

import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#endif

/// A message to publish.
public struct OutgoingMessage: Sendable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var contentType: String
    /// Persistent messages (delivery mode 2) survive a broker restart in durable queues.
    public var persistent: Bool
    public var headers: [(String, AMQPValue)]

    public init(
        exchange: String, routingKey: String, body: [UInt8], contentType: String = "application/json",
        persistent: Bool = true, headers: [(String, AMQPValue)] = []
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.contentType = contentType
        self.persistent = persistent
        self.headers = headers
    }
}

/// A message taken from a queue, not yet acknowledged.
public struct DeliveredMessage: Sendable {
    /// The tag that `ack` and `reject` take; valid only on the connection that received it.
    public let deliveryTag: UInt64
    public let redelivered: Bool
    public let body: [UInt8]
    public let contentType: String?
    public let headers: [String: AMQPValue]
    /// The consumer the broker delivered it to (empty for `get`).
    public let consumerTag: String

    public init(
        deliveryTag: UInt64, redelivered: Bool, body: [UInt8], contentType: String?, headers: [String: AMQPValue],
        consumerTag: String = ""
    ) {
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.body = body
        self.contentType = contentType
        self.headers = headers
        self.consumerTag = consumerTag
    }

    /// How many times a quorum queue delivered this message before (`x-delivery-count`; 0 the first time).
    public var deliveryCount: Int {
        headers["x-delivery-count"]?.intValue.map(Int.init) ?? 0
    }
}

/// A blocking AMQP 0-9-1 connection with one channel.
///
/// Not thread-safe: one caller at a time, as librabbitmq requires. Calls block the calling thread, so async code
/// runs it on a thread of its own. After `AMQPError.closedByBroker` for a channel-level error the channel is
/// reopened, so the connection stays usable; after a connection-level failure, make a new connection.
public final class AMQPConnection {
    private let state: amqp_connection_state_t
    public let url: AMQPURL
    private var channel: amqp_channel_t = 1
    private var confirming = false
    private var nextPublishTag: UInt64 = 1
    /// Whether login succeeded, so that closing has a peer to talk to.
    private var loggedIn = false
    /// Seconds a call waits for the broker before `AMQPError.timedOut`.
    public let timeout: Double
    /// The `connection_name` the broker's tools show for this connection.
    public let name: String?
    /// The heartbeat interval negotiated with the broker, in seconds (0: none).
    public private(set) var heartbeat = 0

    /// Connects, logs in and opens a channel.
    ///
    /// - Parameters:
    ///   - heartbeatSeconds: the heartbeat to negotiate; 0 disables heartbeats. librabbitmq only answers
    ///     heartbeats inside its own calls, so a caller that blocks longer than two intervals between calls
    ///     should pass 0 and rely on TCP.
    ///   - timeout: seconds to wait for the TCP connection and for each broker reply.
    ///   - name: the `connection_name` client property (the program and its role), shown by the broker's tools.
    ///
    /// The socket also gets TCP keepalive (probes after 30 s of silence) and a 60 s TCP user timeout, so a peer
    /// that vanishes without closing is noticed even between heartbeats.
    public init(url: AMQPURL, heartbeatSeconds: Int = 0, timeout: Double = 15, name: String? = nil) throws {
        self.name = name
        guard let state = amqp_new_connection() else {
            throw AMQPError.connectionFailed(target: url.description, message: "librabbitmq could not allocate")
        }
        self.state = state
        self.url = url
        self.timeout = timeout
        // On failure the class is fully initialised, so deinit runs and releases `state`.
        try open(heartbeatSeconds: heartbeatSeconds)
    }

    deinit {
        if loggedIn {
            _ = amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
            _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        amqp_destroy_connection(state)
    }

    private func open(heartbeatSeconds: Int) throws {
        guard let socket = url.tls ? amqp_ssl_socket_new(state) : amqp_tcp_socket_new(state) else {
            throw AMQPError.connectionFailed(target: url.description, message: "cannot create a socket")
        }
        if url.tls {
            if let ca = url.caCertificate {
                let status = amqp_ssl_socket_set_cacert(socket, ca)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError.connectionFailed(
                        target: url.description, message: "cannot use the CA file \(ca): \(Self.message(for: status))")
                }
            }
            if let certificate = url.certificate, let key = url.key {
                let status = amqp_ssl_socket_set_key(socket, certificate, key)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError.connectionFailed(
                        target: url.description,
                        message: "cannot use the client certificate \(certificate): \(Self.message(for: status))")
                }
            }
            amqp_ssl_socket_set_verify_peer(socket, url.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, url.verifyPeer ? 1 : 0)
        }
        var wait = timeval(seconds: timeout)
        let status = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &wait)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.connectionFailed(target: url.description, message: Self.message(for: status))
        }
        _ = amqp_set_rpc_timeout(state, &wait)
        _ = infmllm_tcp_keepalive(amqp_socket_get_sockfd(socket), 30, 10, 3, 60_000)
        let login = infmllm_amqp_login_named(
            state, url.virtualHost, 0, 131_072, Int32(heartbeatSeconds), url.user, url.password, name)
        do {
            try check(login, "login")
        } catch {
            throw AMQPError.connectionFailed(target: url.description, message: "\(error)")
        }
        loggedIn = true
        heartbeat = Int(amqp_get_heartbeat(state))
        try openChannel()
    }

    private func openChannel() throws {
        amqp_channel_open(state, channel)
        try check(amqp_get_rpc_reply(state), "channel.open")
        confirming = false
        nextPublishTag = 1
    }

    // MARK: - Topology

    /// Declares a durable exchange; redeclaring one with the same settings does nothing.
    public func declareExchange(_ name: String, type: String = "direct") throws {
        withAMQPBytes(name) { exchange in
            withAMQPBytes(type) { kind in
                _ = amqp_exchange_declare(state, channel, exchange, kind, 0, 1, 0, 0, amqp_empty_table)
            }
        }
        try check(amqp_get_rpc_reply(state), "exchange.declare \(name)")
    }

    /// Declares a durable queue with `arguments`; redeclaring it with the same arguments does nothing, and with
    /// different ones fails with 406 PRECONDITION_FAILED.
    /// - Returns: the number of ready messages and of consumers.
    @discardableResult
    public func declareQueue(_ name: String, arguments: [(String, AMQPValue)] = []) throws -> (
        messageCount: Int, consumerCount: Int
    ) {
        try queueDeclare(name, passive: false, arguments: arguments)
    }

    /// The ready message and consumer counts of an existing queue; 404 NOT_FOUND if there is none.
    public func queueCounts(_ name: String) throws -> (messageCount: Int, consumerCount: Int) {
        try queueDeclare(name, passive: true, arguments: [])
    }

    private func queueDeclare(_ name: String, passive: Bool, arguments: [(String, AMQPValue)]) throws -> (
        messageCount: Int, consumerCount: Int
    ) {
        let ok = withAMQPBytes(name) { queue in
            withAMQPTable(arguments) { table in
                amqp_queue_declare(state, channel, queue, passive ? 1 : 0, 1, 0, 0, table)
            }
        }
        guard let ok else {
            try check(amqp_get_rpc_reply(state), "queue.declare \(name)")
            throw AMQPError.library(operation: "queue.declare \(name)", message: "no declare-ok")
        }
        return (Int(ok.pointee.message_count), Int(ok.pointee.consumer_count))
    }

    /// Binds `queue` to `exchange` for `routingKey`.
    public func bindQueue(_ queue: String, exchange: String, routingKey: String) throws {
        withAMQPBytes(queue) { queueBytes in
            withAMQPBytes(exchange) { exchangeBytes in
                withAMQPBytes(routingKey) { key in
                    _ = amqp_queue_bind(state, channel, queueBytes, exchangeBytes, key, amqp_empty_table)
                }
            }
        }
        try check(amqp_get_rpc_reply(state), "queue.bind \(queue) to \(exchange)")
    }

    /// Deletes a queue and its messages; deleting a missing queue succeeds.
    public func deleteQueue(_ name: String) throws {
        withAMQPBytes(name) { _ = amqp_queue_delete(state, channel, $0, 0, 0) }
        try check(amqp_get_rpc_reply(state), "queue.delete \(name)")
    }

    /// Deletes an exchange; deleting a missing exchange succeeds.
    public func deleteExchange(_ name: String) throws {
        withAMQPBytes(name) { _ = amqp_exchange_delete(state, channel, $0, 0) }
        try check(amqp_get_rpc_reply(state), "exchange.delete \(name)")
    }

    // MARK: - Errors

    /// Turns a librabbitmq RPC reply into a thrown error, answering a broker's close so the link stays in step.
    /// Skips the closing handshake from now on: the connection is known dead.
    func markBroken() { loggedIn = false }

    /// librabbitmq statuses after which the connection cannot be used, or even closed, any more.
    static let brokenStatuses: Set<Int32> = [
        AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue, AMQP_STATUS_CONNECTION_CLOSED.rawValue,
        AMQP_STATUS_SOCKET_ERROR.rawValue, AMQP_STATUS_SOCKET_CLOSED.rawValue, AMQP_STATUS_SSL_ERROR.rawValue,
    ]

    func check(_ reply: amqp_rpc_reply_t, _ operation: String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let status = reply.library_error
            if status == AMQP_STATUS_TIMEOUT.rawValue {
                throw AMQPError.timedOut(operation: operation, seconds: timeout)
            }
            // The socket is gone or the broker went silent: closing politely would only wait on it.
            if Self.brokenStatuses.contains(status) { markBroken() }
            throw AMQPError.library(operation: operation, message: Self.message(for: status))
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            try handleBrokerClose(method: reply.reply, operation: operation)
        default:
            throw AMQPError.library(operation: operation, message: "no reply from librabbitmq")
        }
    }

    /// Acknowledges a close that the broker sent and throws it as `closedByBroker`.
    func handleBrokerClose(method: amqp_method_t, operation: String) throws -> Never {
        switch method.id {
        case AMQPMethod.channelClose:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            var closeOK = amqp_channel_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, channel, AMQPMethod.channelCloseOK, &closeOK)
            let error = AMQPError.closedByBroker(
                operation: operation, code: Int(close.reply_code), text: string(from: close.reply_text))
            // Keep the connection usable: a channel-level error only costs the channel.
            channel = channel == amqp_channel_t.max ? 1 : channel + 1
            do { try openChannel() } catch { throw error }
            throw error
        case AMQPMethod.connectionClose:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var closeOK = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, 0, AMQPMethod.connectionCloseOK, &closeOK)
            throw AMQPError.closedByBroker(
                operation: operation, code: Int(close.reply_code), text: string(from: close.reply_text))
        default:
            throw AMQPError.library(
                operation: operation, message: "unexpected method 0x\(String(method.id, radix: 16))")
        }
    }

    static func message(for status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }

    // MARK: - Internals shared with the publishing and consuming extensions

    var connectionState: amqp_connection_state_t { state }
    var channelID: amqp_channel_t { channel }
    var isConfirming: Bool {
        get { confirming }
        set { confirming = newValue }
    }
    var publishTag: UInt64 {
        get { nextPublishTag }
        set { nextPublishTag = newValue }
    }
}

/// AMQP method ids that librabbitmq defines as C casts, which Swift does not import.
enum AMQPMethod {
    static let connectionClose: amqp_method_number_t = 0x000A_0032
    static let connectionCloseOK: amqp_method_number_t = 0x000A_0033
    static let channelClose: amqp_method_number_t = 0x0014_0028
    static let channelCloseOK: amqp_method_number_t = 0x0014_0029
    static let basicReturn: amqp_method_number_t = 0x003C_0032
    static let basicGetOK: amqp_method_number_t = 0x003C_0047
    static let basicGetEmpty: amqp_method_number_t = 0x003C_0048
    static let basicAck: amqp_method_number_t = 0x003C_0050
    static let basicNack: amqp_method_number_t = 0x003C_0078
    static let basicCancel: amqp_method_number_t = 0x003C_001E
}

extension timeval {
    init(seconds: Double) {
        let whole = seconds.rounded(.down)
        self.init(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }
}
