// What every outside service's failure says: whether trying again later (on a new connection) can help.

/// A failure of PostgreSQL, RabbitMQ or a stand-in for them.
public protocol ServiceError: Error {
    /// True for a lost or refused connection, a shutdown, a timeout: retry with backoff. False for a refusal that
    /// will repeat (a constraint, a bad argument).
    var isTransient: Bool { get }
}
