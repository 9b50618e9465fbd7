// In-memory stand-ins for the worker's services, behind the same protocols as PostgreSQL and RabbitMQ: a broker
// with one model queue, the dead-letter queue and the rejected queue (quorum-queue semantics: delivery counts, a
// delivery limit, redelivery when a connection drops), a task store, and a clock that moves only when told.

import Foundation
import Jobs
import Synchronization

/// A clock tests move; sleeping moves it at once.
final class ManualClock: MonotonicClock {
    private let seconds = Mutex(0.0)

    func now() -> Double { seconds.withLock { $0 } }
    func sleep(_ duration: Double) { advance(duration) }
    func advance(_ duration: Double) { seconds.withLock { $0 += max(0, duration) } }
}

/// A broker as RabbitMQ 3.10 treats the worker's quorum queues.
final class FakeBroker: @unchecked Sendable {
    struct Message {
        var body: [UInt8]
        var deliveryCount = 0
        var round = 0
        var redelivered = false
        var contentType: String?
        var headers: [String: String] = [:]
    }

    /// Publishes that fail with a transient error before the next one works (a lost broker connection, which the
    /// publisher replaces by itself).
    var publishFailures = 0

    enum Queue: Hashable {
        case model(String)
        case dead
        case rejected
    }

    /// Deliveries allowed after the first before a message is dead-lettered.
    let deliveryLimit: Int
    // Invariant: every property below is read and written only while holding `lock`.
    private let lock = NSLock()
    private var queues: [Queue: [Message]] = [:]
    private var unacked: [UInt64: (queue: Queue, message: Message, connection: Int)] = [:]
    private var nextTag: UInt64 = 0
    private var nextConnection = 0
    /// Times a message was held past the consumer timeout (and taken back).
    private(set) var timeouts = 0

    init(deliveryLimit: Int = 5) {
        self.deliveryLimit = deliveryLimit
    }

    func publish(_ body: [UInt8], to queue: Queue, round: Int = 0, headers: [String: String] = [:]) {
        lock.withLock { queues[queue, default: []].append(Message(body: body, round: round, headers: headers)) }
    }

    func messages(in queue: Queue) -> [Message] { lock.withLock { queues[queue] ?? [] } }
    var unacknowledged: Int { lock.withLock { unacked.count } }

    /// The deliveries `connection` holds.
    func unackedTags(connection: Int?) -> [UInt64] {
        lock.withLock { unacked.filter { $0.value.connection == connection }.map(\.key) }
    }

    /// Called with each message as it is acknowledged.
    var onAck: (Message) -> Void {
        get { lock.withLock { ackObserver } }
        set { lock.withLock { ackObserver = newValue } }
    }
    private var ackObserver: (Message) -> Void = { _ in }

    func openConnection() -> Int {
        lock.withLock {
            nextConnection += 1
            return nextConnection
        }
    }

    /// The next message of `queues` for `connection`, while it holds fewer than `prefetch`.
    func deliver(from sources: [Queue], connection: Int, prefetch: Int) -> Delivery? {
        lock.withLock {
            guard unacked.values.filter({ $0.connection == connection }).count < prefetch else { return nil }
            for source in sources where !(queues[source] ?? []).isEmpty {
                let message = queues[source]!.removeFirst()
                nextTag += 1
                unacked[nextTag] = (source, message, connection)
                return Delivery(
                    body: message.body, contentType: message.contentType, isDeadLetter: source == .dead,
                    isRedelivery: message.redelivered, deliveryCount: message.deliveryCount, round: message.round,
                    tag: nextTag, connection: connection)
            }
            return nil
        }
    }

    func ack(_ tag: UInt64, connection: Int) {
        let acknowledged: (Message, (Message) -> Void)? = lock.withLock {
            guard let held = unacked[tag], held.connection == connection else { return nil }
            unacked[tag] = nil
            return (held.message, ackObserver)
        }
        if let (message, observer) = acknowledged { observer(message) }
    }

    /// Returns a delivery to its queue (a reject with requeue: not counted as a failed delivery).
    func requeue(_ tag: UInt64, connection: Int) {
        lock.withLock {
            guard let held = unacked[tag], held.connection == connection else { return }
            unacked[tag] = nil
            var message = held.message
            message.redelivered = true
            queues[held.queue, default: []].insert(message, at: 0)
        }
    }

    /// A connection dropped (its process died, or the broker closed its channel): everything it held comes back
    /// counted as a failed delivery, dead-lettered past the limit.
    func drop(connection: Int) {
        lock.withLock {
            for (tag, held) in unacked where held.connection == connection {
                unacked[tag] = nil
                var message = held.message
                message.redelivered = true
                message.deliveryCount += 1
                if case .model = held.queue, message.deliveryCount > deliveryLimit {
                    message.redelivered = false
                    queues[.dead, default: []].append(message)
                } else {
                    queues[held.queue, default: []].insert(message, at: 0)
                }
            }
        }
    }
}

/// A worker's consuming connection to a `FakeBroker`.
final class FakeQueue: TaskQueue, @unchecked Sendable {
    let broker: FakeBroker
    let modelKey: String
    // Invariant: `connection`, `prefetchCount` and `stopped` are only read and written while holding `lock`.
    private let lock = NSLock()
    private var connection: Int?
    private var prefetchCount: Int
    private var stopped = false

    init(broker: FakeBroker, modelKey: String, prefetch: Int) {
        self.broker = broker
        self.modelKey = modelKey
        prefetchCount = prefetch
    }

    var isConnected: Bool { lock.withLock { connection != nil } }
    var connectionID: Int? { lock.withLock { connection } }
    var prefetch: Int { lock.withLock { prefetchCount } }

    func connect() throws {
        let old = lock.withLock { connection }
        if let old { broker.drop(connection: old) }
        let new = broker.openConnection()
        lock.withLock { connection = new }
    }

    func next(timeout: Double) throws -> Delivery? {
        let (current, prefetch, stopped) = lock.withLock { (connection, prefetchCount, self.stopped) }
        guard let current else { throw FakeError(transient: true, "not connected") }
        guard !stopped else { return nil }
        return broker.deliver(from: [.model(modelKey), .dead], connection: current, prefetch: prefetch)
    }

    func ack(_ delivery: Delivery) throws { broker.ack(delivery.tag, connection: delivery.connection) }
    func requeue(_ delivery: Delivery) throws { broker.requeue(delivery.tag, connection: delivery.connection) }
    func isCurrent(_ delivery: Delivery) -> Bool { lock.withLock { connection == delivery.connection } }
    func setPrefetch(_ count: Int) throws { lock.withLock { prefetchCount = count } }

    func stopConsuming() throws -> Int {
        lock.withLock { stopped = true }
        return 0
    }

    func close() {}

    /// The process died: the broker takes back everything this connection held.
    func crash() {
        let old = lock.withLock {
            defer { connection = nil }
            return connection
        }
        if let old { broker.drop(connection: old) }
    }
}

/// Publishes into a `FakeBroker`, one queue per model key (every lane in it: lanes are RabbitTaskQueue's, tested on
/// RabbitMQ).
final class FakePublisher: TaskPublisher {
    let broker: FakeBroker
    init(broker: FakeBroker) { self.broker = broker }

    func publish(_ messages: [TaskMessage], model: String, priority: TaskPriority, round: Int) throws {
        if broker.publishFailures > 0 {
            broker.publishFailures -= 1
            throw FakeError(transient: true, "broker connection lost")
        }
        for message in messages { broker.publish(message.encoded(), to: .model(ModelKey.of(model)), round: round) }
    }

    func park(_ delivery: Delivery, reason: String, worker: String) throws {
        broker.publish(delivery.body, to: .rejected, headers: ["x-infmllm-error": reason, "x-infmllm-worker": worker])
    }

    func queueState(model: String) throws -> (ready: Int, consumers: Int) {
        (broker.messages(in: .model(ModelKey.of(model))).count, 1)
    }
}

struct FakeError: ServiceError, CustomStringConvertible {
    let isTransient: Bool
    let description: String

    init(transient: Bool, _ description: String) {
        isTransient = transient
        self.description = description
    }
}

/// The tasks table and the results, in memory.
final class FakeStore: TaskStore {
    var rows: [Int64: TaskRow] = [:]
    var results: [Int64: TaskOutcome] = [:]
    var errors: [Int64: String] = [:]
    /// Seconds each task queued again to read its image later waits, as the store was told.
    var readLater: [Int64: Double] = [:]
    var published: Set<Int64> = []
    /// A permanent refusal of some task's result (a constraint, say), by task id.
    var refuses: (TaskOutcome) -> String? = { _ in nil }
    /// Calls that fail with a transient error before the next one works (a lost connection).
    var transientFailures = 0
    /// Calls to `start`, with the tasks the model was about to start on.
    var starts: [[Int64]] = []
    /// Calls to `start` that fail with a transient error (the database went away as tasks were starting), and
    /// what happens at each.
    var startFailures = 0
    var onStartFailure: () -> Void = {}
    private var nextID: Int64 = 0

    /// The connection is lost (the database restarted): every call fails with a transient error until the worker
    /// makes a new store (`reconnect`); as with libpq, `isHealthy` says so only once a call has failed on it. Past
    /// 20 calls on the lost connection the fake gives up with a permanent error, so that a worker that never
    /// reconnects fails a test instead of hanging it.
    var connectionLost = false
    private var callsWhileLost = 0
    /// Stores made by the worker (`reconnect`), its first included.
    private(set) var connections = 0

    var isHealthy: Bool { !(connectionLost && callsWhileLost > 0) }

    /// The worker makes a new store: a new connection.
    func reconnect() -> FakeStore {
        connectionLost = false
        callsWhileLost = 0
        connections += 1
        return self
    }

    private func checkConnection() throws {
        guard connectionLost else { return }
        callsWhileLost += 1
        throw FakeError(transient: callsWhileLost <= 20, "connection lost, and no new store made")
    }

    /// Adds a job's tasks; returns them in order.
    @discardableResult
    func add(
        _ images: [String], texts: [String]? = nil, job: Int64 = 1, kind: TaskKind = .caption,
        model: String = "tiny", generation: String = #"{"max_new_tokens":4}"#, reuseResults: Bool = false
    ) -> [TaskRow] {
        images.enumerated().map { index, image in
            nextID += 1
            let row = TaskRow(
                taskID: nextID, jobID: job, imageURI: image, inputText: texts?[index] ?? "", taskKind: kind,
                generationJSON: generation, jobModel: model, reuseResults: reuseResults)
            rows[nextID] = row
            return row
        }
    }

    func status(_ id: Int64) -> TaskStatus { rows[id]!.status }
    var counts: [TaskStatus: Int] { Dictionary(grouping: rows.values, by: \.status).mapValues(\.count) }

    private func call() throws {
        try checkConnection()
        if transientFailures > 0 {
            transientFailures -= 1
            throw FakeError(transient: true, "connection lost")
        }
    }

    func tasks(_ ids: [Int64]) throws -> [Int64: TaskRow] {
        try call()
        return rows.filter { ids.contains($0.key) }
    }

    func start(_ ids: [Int64], worker: String, lease: Double) throws {
        try call()
        if startFailures > 0 {
            startFailures -= 1
            onStartFailure()
            throw FakeError(transient: true, "connection lost")
        }
        starts.append(ids)
        for id in ids where rows[id]!.status != .done && rows[id]!.status != .cancelled {
            rows[id]!.status = .running
            rows[id]!.attempts += 1
            rows[id]!.worker = worker
        }
    }

    func record(_ outcomes: [TaskOutcome], provenance: Provenance) throws {
        try call()
        if let refused = outcomes.lazy.compactMap(refuses).first {
            throw FakeError(transient: false, refused)
        }
        for outcome in outcomes {
            switch outcome.ending {
            case .result:
                if results[outcome.taskID] == nil { results[outcome.taskID] = outcome }
                rows[outcome.taskID]!.status = .done
            case let .failed(reason):
                guard rows[outcome.taskID]!.status != .done else { continue }
                rows[outcome.taskID]!.status = .failed
                errors[outcome.taskID] = reason
            case let .readLater(reason, after):
                guard [.queued, .running].contains(rows[outcome.taskID]!.status) else { continue }
                rows[outcome.taskID]!.status = .queued
                rows[outcome.taskID]!.readRetries += 1
                errors[outcome.taskID] = reason
                readLater[outcome.taskID] = after
            }
        }
    }

    func markCancelled(_ ids: [Int64]) throws {
        try call()
        for id in ids where rows[id]!.status != .done { rows[id]!.status = .cancelled }
    }

    func reuseResults(for images: [ReadImage], weightsSHA256: String) throws -> [Int64] {
        try call()
        var reused: [Int64] = []
        for image in images {
            let me = rows[image.taskID]!
            guard
                let earlier = results.values.first(where: {
                    $0.imageSHA256 == image.sha256 && rows[$0.taskID]!.inputText == me.inputText
                })
            else { continue }
            results[me.taskID] = TaskOutcome(
                taskID: me.taskID, jobID: me.jobID, ending: earlier.ending, imageSHA256: image.sha256)
            rows[me.taskID]!.status = .done
            reused.append(me.taskID)
        }
        return reused
    }

    func markPublished(_ ids: [Int64]) throws { published.formUnion(ids) }

    /// Lease renewals by worker, and tasks whose messages were received.
    var renewals: [String] = []
    var delivered: Set<Int64> = []

    func renewLeases(worker: String, lease: Double) throws {
        try call()
        renewals.append(worker)
    }

    func markDelivered(_ ids: [Int64]) throws {
        try call()
        delivered.formUnion(ids)
    }

    func claimUnpublished(
        olderThan grace: Double, job: Int64?, limit: Int, _ publish: ([UnpublishedTask]) throws -> Void
    ) throws -> Int { 0 }

    func endExpiredLeases(maxAttempts: Int) throws -> [ExpiredLease] { [] }

    func modelsWithUndelivered(publishedBefore age: Double) throws -> [String] { [] }

    func requeueUndelivered(model: String, publishedBefore age: Double) throws -> Int { 0 }

    /// Another worker holds the reconciler's lock, and the reconciler last finished this long ago.
    var reconcilerHeldElsewhere = false
    var reconcilerIdle: Double?

    func withReconcilerLock<T>(holder: String, _ body: () throws -> T) throws -> T? {
        try checkConnection()
        return reconcilerHeldElsewhere ? nil : try body()
    }

    func reconcilerIdleSeconds() throws -> Double? { reconcilerIdle }
}
