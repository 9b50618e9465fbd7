// Priority lanes on the real RabbitMQ: a job's tasks travel in its lane's queue, and a worker's queue consumes the
// highest lane with messages ready, moving up as soon as it sees one and down once it has settled what it took,
// without sending any message back (each return would count against its delivery limit).

import Foundation
import Jobs
import RabbitMQ
import TestSupport
import Testing

@Suite struct PriorityLaneTests {
    @Test func eachLaneHasItsQueueAndRoutingKey() {
        let topology = TaskTopology(prefix: "p", model: "/models/InfMLLM-7B")
        #expect(topology.queue(.normal) == topology.queue && topology.routingKey(.normal) == topology.routingKey)
        #expect(topology.queue(.high) == "p.model.InfMLLM-7B:high" && topology.routingKey(.high) == "InfMLLM-7B:high")
        #expect(topology.queue(.low) == "p.model.InfMLLM-7B:low" && topology.routingKey(.low) == "InfMLLM-7B:low")
        // A model key never holds a colon: no model's queue is another's lane.
        #expect(
            TaskTopology(prefix: "p", model: "foo:high").queue != TaskTopology(prefix: "p", model: "foo").queue(.high))
        #expect(TaskPriority.lanes == [.high, .normal, .low] && TaskPriority.low < .normal && .normal < .high)
    }

    static func publisher(_ topology: TaskTopology) throws -> RabbitTaskPublisher {
        RabbitTaskPublisher(
            urls: try AMQPURL.list(TestBroker.url), prefix: topology.prefix, deliveryLimit: topology.deliveryLimit)
    }

    /// A worker's queue of `topology`, prefetch 2, connected.
    static func consumer(_ topology: TaskTopology) throws -> RabbitTaskQueue {
        let queue = RabbitTaskQueue(
            urls: try AMQPURL.list(TestBroker.url), topology: topology, prefetch: 2, heartbeat: 0)
        try queue.connect()
        return queue
    }

    static func lane(of delivery: Delivery) throws -> (lane: TaskPriority, task: Int64) {
        let message = try TaskMessage.decode(delivery.body)
        return (message.jobID == 3 ? .high : message.jobID == 2 ? .normal : .low, message.taskIDs[0])
    }

    /// Six messages in each lane, published low first, then a queue with a prefetch of 2 that acknowledges each
    /// message as it comes: the six high ones, the six normal ones, the six low ones, each once, none sent back.
    @Test func lanesAreTakenHighestFirstWithoutSendingAnyBack() throws {
        try TestBroker.withTopology { _, topology in
            let publisher = try Self.publisher(topology)
            for (job, lane) in [(Int64(1), TaskPriority.low), (2, .normal), (3, .high)] {
                let messages = (1...6).map { TaskMessage(jobID: job, taskIDs: [job * 100 + Int64($0)]) }
                try publisher.publish(messages, model: "m", priority: lane, round: 0)
            }
            #expect(try publisher.queueState(model: "m").ready == 18)
            let queue = try Self.consumer(topology)
            defer { queue.close() }
            var taken: [(lane: TaskPriority, task: Int64)] = []
            let deadline = Date().addingTimeInterval(60)
            while taken.count < 18 && Date() < deadline {
                guard let delivery = try queue.next(timeout: 0.5) else { continue }
                let (lane, task) = try Self.lane(of: delivery)
                #expect(delivery.priority == lane, "the delivery names its lane")
                #expect(delivery.deliveryCount == 0 && !delivery.isRedelivery, "never sent back")
                taken.append((lane, task))
                try queue.ack(delivery)
            }
            #expect(
                taken.map(\.lane) == Array(repeating: .high, count: 6) + Array(repeating: .normal, count: 6)
                    + Array(repeating: .low, count: 6), "\(taken)")
            #expect(Set(taken.map(\.task)).count == 18)
            #expect(try publisher.queueState(model: "m").ready == 0)
        }
    }

    /// A lane's queue deleted while the worker consumes another lane (no consumer is on it, so no cancel comes): the
    /// next check of the lanes finds it gone (404 on the passive declare). That is a transient failure, so the worker
    /// reconnects, and connecting declares the queue again, rather than the end of the worker.
    @Test func aLaneDeletedUnderTheWorkerIsATransientFailure() throws {
        try TestBroker.withTopology { connection, topology in
            let publisher = try Self.publisher(topology)
            try publisher.publish([TaskMessage(jobID: 1, taskIDs: [1])], model: "m", priority: .low, round: 0)
            let queue = try Self.consumer(topology)
            defer { queue.close() }
            // The low lane's message, held: the worker stays in the low lane and checks the others every 2 s.
            let deadline = Date().addingTimeInterval(60)
            var held: Delivery?
            while held == nil && Date() < deadline { held = try queue.next(timeout: 0.5) }
            #expect(held?.priority == .low)
            try connection.deleteQueue(topology.queue(.high))
            var failure: Error?
            while failure == nil && Date() < deadline {
                do { _ = try queue.next(timeout: 0.5) } catch { failure = error }
            }
            let error = try #require(failure as? AMQPError, "\(String(describing: failure))")
            #expect(error.isTransient && "\(error)".contains("it is gone"), "\(error)")
            try queue.connect()
            #expect(try connection.queueCounts(topology.queue(.high)).messageCount == 0, "declared again")
        }
    }

    /// A busy worker in the low lane (it holds its two messages) sees high messages published meanwhile and takes
    /// them next; once it has settled everything, it goes back to the low lane. Every message comes once.
    @Test func aBusyWorkerMovesUpToAHigherLaneAndBackDown() throws {
        try TestBroker.withTopology { _, topology in
            let publisher = try Self.publisher(topology)
            try publisher.publish(
                (1...10).map { TaskMessage(jobID: 1, taskIDs: [Int64($0)]) }, model: "m", priority: .low, round: 0)
            let queue = try Self.consumer(topology)
            defer { queue.close() }
            func take(_ count: Int, acknowledging: Bool) throws -> [Delivery] {
                var deliveries: [Delivery] = []
                let deadline = Date().addingTimeInterval(30)
                while deliveries.count < count && Date() < deadline {
                    guard let delivery = try queue.next(timeout: 0.5) else { continue }
                    deliveries.append(delivery)
                    if acknowledging { try queue.ack(delivery) }
                }
                return deliveries
            }
            let held = try take(2, acknowledging: false)
            #expect(try held.map { try Self.lane(of: $0).lane } == [.low, .low])
            try publisher.publish(
                (1...3).map { TaskMessage(jobID: 3, taskIDs: [Int64(100 + $0)]) }, model: "m", priority: .high,
                round: 0)
            let high = try take(3, acknowledging: true)
            #expect(try high.map { try Self.lane(of: $0).lane } == [.high, .high, .high], "while two low are held")
            for delivery in held { try queue.ack(delivery) }
            let rest = try take(8, acknowledging: true)
            #expect(try rest.map { try Self.lane(of: $0).lane } == Array(repeating: .low, count: 8))
            let all = try (held + high + rest).map { try Self.lane(of: $0).task }
            #expect(Set(all).count == 13 && (held + high + rest).allSatisfy { $0.deliveryCount == 0 })
            #expect(try publisher.queueState(model: "m").ready == 0)
        }
    }

    /// High messages that come one at a time, each taken as soon as it is published, leave the high lane with none
    /// ready: a worker holding one moves down to the normal lane's backlog rather than wait on the high lane.
    @Test func aLowerBacklogIsServedWhileTheHigherLaneHasNoneReady() throws {
        try TestBroker.withTopology { _, topology in
            let publisher = try Self.publisher(topology)
            try publisher.publish([TaskMessage(jobID: 3, taskIDs: [1])], model: "m", priority: .high, round: 0)
            try publisher.publish(
                (1...5).map { TaskMessage(jobID: 2, taskIDs: [Int64(10 + $0)]) }, model: "m", priority: .normal,
                round: 0)
            let queue = try Self.consumer(topology)
            defer { queue.close() }
            var held: [Delivery] = []
            let deadline = Date().addingTimeInterval(30)
            while !held.contains(where: { $0.priority == .normal }) && Date() < deadline {
                if let delivery = try queue.next(timeout: 0.5) { held.append(delivery) }
            }
            #expect(held.first?.priority == .high, "\(held.map(\.priority))")
            #expect(held.contains { $0.priority == .normal }, "a normal message while the high one is held")
            for delivery in held { try queue.ack(delivery) }
        }
    }

    /// After `stopConsuming`, checking the lanes subscribes none again: a draining worker takes nothing new.
    @Test func aStoppedQueueConsumesNoLaneAgain() throws {
        try TestBroker.withTopology { _, topology in
            let publisher = try Self.publisher(topology)
            try publisher.publish([TaskMessage(jobID: 1, taskIDs: [1])], model: "m", priority: .low, round: 0)
            let queue = try Self.consumer(topology)
            defer { queue.close() }
            #expect(try publisher.queueState(model: "m").consumers == 1, "one lane at a time")
            _ = try queue.stopConsuming()
            // Past the half second between checks, twice.
            for _ in 0..<3 { #expect(try queue.next(timeout: 0.4) == nil) }
            #expect(try publisher.queueState(model: "m") == (ready: 1, consumers: 0))
        }
    }
}
