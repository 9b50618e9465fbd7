// The broker as a worker sees it: deliveries from its model's queue and the shared dead letters, settled one by
// one, and messages published with confirms. RabbitMQ implements both; unit tests use an in-memory broker.

/// A message as a worker received it.
public struct Delivery: Sendable {
    public var body: [UInt8]
    public var contentType: String?
    /// Whether it came from the dead-letter queue (the broker gave up on it) rather than the model's queue.
    public var isDeadLetter: Bool
    /// Whether the broker delivered it before, to a consumer that did not settle it.
    public var isRedelivery: Bool
    /// Earlier deliveries, as the broker counts them.
    public var deliveryCount: Int
    /// Times workers sent it round again after a dead letter.
    public var round: Int
    /// The queue lane it came from (normal for a dead letter).
    public var priority: TaskPriority
    /// The queue's handle of this delivery: its tag and the connection it came on.
    public var tag: UInt64
    public var connection: Int

    public init(
        body: [UInt8], contentType: String? = nil, isDeadLetter: Bool = false, isRedelivery: Bool = false,
        deliveryCount: Int = 0, round: Int = 0, priority: TaskPriority = .normal, tag: UInt64, connection: Int
    ) {
        self.priority = priority
        self.body = body
        self.contentType = contentType
        self.isDeadLetter = isDeadLetter
        self.isRedelivery = isRedelivery
        self.deliveryCount = deliveryCount
        self.round = round
        self.tag = tag
        self.connection = connection
    }
}

/// A worker's consuming side of the broker. Thread-safe: a stop handler settles messages while the worker loop runs.
public protocol TaskQueue: AnyObject, Sendable {
    /// Whether a connection is open (deliveries can be taken and settled).
    var isConnected: Bool { get }
    /// Opens a new connection (the old one's unsettled deliveries go back to the queue) and starts consuming.
    func connect() throws
    /// The next delivery, or nil when none arrives within `timeout` seconds (0: only what has arrived); of what has
    /// arrived, the highest lane's first.
    func next(timeout: Double) throws -> Delivery?
    /// Acknowledges `delivery`: the broker forgets it. A delivery of an earlier connection is already back in the
    /// queue and is left alone.
    func ack(_ delivery: Delivery) throws
    /// Returns `delivery` to its queue for another worker.
    func requeue(_ delivery: Delivery) throws
    /// Whether `delivery` came on the current connection (the broker took back every message of earlier ones).
    func isCurrent(_ delivery: Delivery) -> Bool
    /// Unsettled messages the broker may hand over at once.
    var prefetch: Int { get }
    func setPrefetch(_ count: Int) throws
    /// Stops consuming and returns what arrived but was not taken; returns how many went back.
    func stopConsuming() throws -> Int
    func close()
}

/// Publishing task messages and what else a worker sends the broker. One caller at a time.
public protocol TaskPublisher: AnyObject {
    /// Publishes `messages` to `model`'s queue lane for `priority` and waits for the broker's confirms; `round` above
    /// 0 marks messages sent round again after the broker dead-lettered them.
    func publish(_ messages: [TaskMessage], model: String, priority: TaskPriority, round: Int) throws
    /// Parks a message that cannot be a task where people look for them, with the reason and the worker's name.
    func park(_ delivery: Delivery, reason: String, worker: String) throws
    /// Messages ready in `model`'s queue lanes and their consumers, together.
    func queueState(model: String) throws -> (ready: Int, consumers: Int)
}
