// A broker cluster given as several URLs (`amqp://node1...,amqp://node2...`): a connection is made to the first node
// that answers, so that when one node fails, reconnecting finds another. Quorum queues keep their messages on the
// nodes that remain.

extension AMQPURL {
    /// The URLs of a comma-separated list, in order.
    ///
    /// - Throws: `AMQPError.invalidURL` for the first that cannot be read, or for an empty list.
    public static func list(_ text: String) throws -> [AMQPURL] {
        let urls = try text.split(separator: ",").map { try AMQPURL(String($0.drop { $0 == " " })) }
        guard !urls.isEmpty else { throw AMQPError.invalidURL(text, reason: "no URL given") }
        return urls
    }
}

extension AMQPConnection {
    /// A connection to the first of `urls` that answers, trying them in order from `start` (wrapping around).
    ///
    /// - Throws: the last node's error when none answers.
    public static func first(
        of urls: [AMQPURL], from start: Int = 0, heartbeatSeconds: Int = 0, timeout: Double = 15, name: String? = nil
    ) throws -> AMQPConnection {
        var lastError: Error = AMQPError.connectionFailed(target: "", message: "no broker URL")
        for offset in 0..<urls.count {
            let url = urls[(start + offset) % urls.count]
            do {
                return try AMQPConnection(url: url, heartbeatSeconds: heartbeatSeconds, timeout: timeout, name: name)
            } catch let error as AMQPError where error.isTransient {
                lastError = error
            }
        }
        throw lastError
    }
}
