// Priority lanes on the real RabbitMQ: a job's tasks travel in its lane's queue, and a worker's queue takes the
// highest lane's messages first, returning those of lower lanes that arrived meanwhile, and consumes a lower lane
// again once the lanes above it have nothing ready.

import Foundation
import Jobs
import RabbitMQ
import TestSupport
import Testing

@Suite struct PriorityLaneTests {
    @Test func eachLaneHasItsQueueAndRoutingKey() {
        let topology = TaskTopology(prefix: "p", model: "/models/InfMLLM-7B")
        #expect(topology.queue(.normal) == topology.queue && topology.routingKey(.normal) == topology.routingKey)
        #expect(topology.queue(.high) == "p.model.InfMLLM-7B.high" && topology.routingKey(.high) == "InfMLLM-7B.high")
        #expect(topology.queue(.low) == "p.model.InfMLLM-7B.low" && topology.routingKey(.low) == "InfMLLM-7B.low")
        #expect(TaskPriority.lanes == [.high, .normal, .low] && TaskPriority.low < .normal && .normal < .high)
    }

    /// Six messages in each lane, published low first; a queue with a prefetch of 2 takes them. Once the first high
    /// message is taken, the six high ones come in a row, before any normal one left, and the normal ones before
    /// any low one left (at most what arrived before the first high message comes earlier); each message comes
    /// once, the ones sent back included.
    @Test func theHighestLaneIsTakenFirstAndLowerLanesWait() throws {
        try TestBroker.withTopology(deliveryLimit: 10) { connection, topology in
            let urls = try AMQPURL.list(TestBroker.url)
            let publisher = RabbitTaskPublisher(
                urls: urls, prefix: topology.prefix, deliveryLimit: topology.deliveryLimit)
            var job: Int64 = 0
            for lane in [TaskPriority.low, .normal, .high] {
                job += 1
                let messages = (1...6).map { TaskMessage(jobID: job, taskIDs: [job * 100 + Int64($0)]) }
                try publisher.publish(messages, model: "m", priority: lane, round: 0)
            }
            #expect(try publisher.queueState(model: "m").ready == 18)
            let queue = RabbitTaskQueue(urls: urls, topology: topology, prefetch: 2, heartbeat: 0)
            defer { queue.close() }
            try queue.connect()
            var taken: [(lane: TaskPriority, task: Int64)] = []
            let deadline = Date().addingTimeInterval(60)
            while taken.count < 18 && Date() < deadline {
                guard let delivery = try queue.next(timeout: 0.5) else { continue }
                let message = try TaskMessage.decode(delivery.body)
                let lane: TaskPriority = message.jobID == 3 ? .high : message.jobID == 2 ? .normal : .low
                #expect(delivery.priority == lane, "the delivery names its lane")
                taken.append((lane, message.taskIDs[0]))
                try queue.ack(delivery)
            }
            #expect(taken.count == 18 && Set(taken.map(\.task)).count == 18, "\(taken)")
            let lanes = taken.map(\.lane)
            let firstHigh = try #require(lanes.firstIndex(of: .high))
            #expect(firstHigh <= 4, "at most two of each lower lane arrive before the first high one: \(lanes)")
            #expect(lanes[firstHigh..<(firstHigh + 6)].allSatisfy { $0 == .high }, "\(lanes)")
            let rest = lanes[(firstHigh + 6)...]
            if let firstLow = rest.firstIndex(of: .low) {
                #expect(!rest[firstLow...].contains(.normal), "no normal message left once low ones come: \(lanes)")
            }
            #expect(try publisher.queueState(model: "m").ready == 0)
        }
    }

    /// A lane that was cancelled is consumed again when the lanes above it run dry, and a message published to a
    /// higher lane meanwhile goes ahead of the lower lane's next ones.
    @Test func aHigherMessagePublishedLaterGoesAheadOfTheLowerLane() throws {
        try TestBroker.withTopology(deliveryLimit: 10) { connection, topology in
            let urls = try AMQPURL.list(TestBroker.url)
            let publisher = RabbitTaskPublisher(
                urls: urls, prefix: topology.prefix, deliveryLimit: topology.deliveryLimit)
            try publisher.publish(
                (1...20).map { TaskMessage(jobID: 1, taskIDs: [Int64($0)]) }, model: "m", priority: .low, round: 0)
            let queue = RabbitTaskQueue(urls: urls, topology: topology, prefetch: 2, heartbeat: 0)
            defer { queue.close() }
            try queue.connect()
            var lanes: [TaskPriority] = []
            var published = false
            let deadline = Date().addingTimeInterval(60)
            while lanes.count < 23 && Date() < deadline {
                guard let delivery = try queue.next(timeout: 0.5) else { continue }
                lanes.append(delivery.priority)
                try queue.ack(delivery)
                if lanes.count == 3 && !published {
                    // Three high messages while low ones are being taken.
                    published = true
                    try publisher.publish(
                        (1...3).map { TaskMessage(jobID: 2, taskIDs: [Int64(100 + $0)]) }, model: "m",
                        priority: .high, round: 0)
                }
            }
            #expect(lanes.count == 23, "\(lanes)")
            let firstHigh = try #require(lanes.firstIndex(of: .high))
            // The high ones come within what the low lane had already handed over (its prefetch, and the broker's
            // next few while the publish travels), then all three in a row.
            #expect(firstHigh <= 3 + 4, "\(lanes)")
            #expect(lanes[firstHigh..<(firstHigh + 3)].allSatisfy { $0 == .high }, "\(lanes)")
        }
    }
}
