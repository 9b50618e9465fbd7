// The librabbitmq owner against the real RabbitMQ that ops/services.sh starts.

import Foundation
import RabbitMQ
import TestSupport
import Testing

enum TestBroker {
    static let url = ProcessInfo.processInfo.environment["INFMLLM_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"

    static func connect() throws -> AMQPConnection {
        try AMQPConnection(url: AMQPURL(url), timeout: 10)
    }

    /// A topology with names no other test or deployment uses, deleted after `body`.
    @discardableResult
    static func withTopology<T>(deliveryLimit: Int = 2, _ body: (AMQPConnection, TaskTopology) throws -> T) throws -> T
    {
        let connection = try connect()
        let topology = TaskTopology(
            prefix: "infmllm-test-\(UInt64.random(in: 0...UInt64.max).hex)", model: "m", deliveryLimit: deliveryLimit)
        defer {
            try? topology.delete(on: connection)
            try? topology.deleteShared(on: connection)
        }
        try topology.declare(on: connection)
        return try body(connection, topology)
    }
}

@Suite struct AMQPConnectionTests {
    @Test func declaringTheTopologyTwiceChangesNothing() throws {
        try TestBroker.withTopology { connection, topology throws in
            try topology.declare(on: connection)
            let other = try TestBroker.connect()
            try topology.declare(on: other)
            #expect(try connection.queueCounts(topology.queue).messageCount == 0)
        }
    }

    @Test func redeclaringWithOtherArgumentsIsRefusedAndTheConnectionRecovers() throws {
        try TestBroker.withTopology { connection, topology throws in
            var changed = topology
            changed.deliveryLimit = topology.deliveryLimit + 1
            #expect {
                try changed.declare(on: connection)
            } throws: { error in
                guard case let .closedByBroker(_, code, text) = error as? AMQPError else { return false }
                return code == 406 && text.contains("x-delivery-limit")
            }
            #expect(try connection.queueCounts(topology.queue).messageCount == 0, "the channel was reopened")
        }
    }

    @Test func publishedMessagesAreConfirmedThenDeliveredPersistentWithHeaders() throws {
        try TestBroker.withTopology { connection, topology throws in
            let bodies = (0..<50).map { Array("{\"v\":1,\"task\":\($0)}".utf8) }
            try connection.publish(
                bodies.map {
                    OutgoingMessage(
                        exchange: topology.exchange, routingKey: topology.routingKey, body: $0,
                        headers: [("x-infmllm-job", .string("demo"))])
                })
            #expect(try connection.queueCounts(topology.queue).messageCount == 50)
            var received: [[UInt8]] = []
            while let message = try connection.get(from: topology.queue) {
                #expect(message.contentType == "application/json")
                #expect(message.headers["x-infmllm-job"] == .string("demo"))
                #expect(message.deliveryCount == 0)
                received.append(message.body)
                try connection.ack(message.deliveryTag)
            }
            #expect(received == bodies)
        }
    }

    @Test func unroutableMessageIsReportedNotLost() throws {
        try TestBroker.withTopology { connection, topology throws in
            #expect {
                try connection.publish([
                    OutgoingMessage(exchange: topology.exchange, routingKey: "nobody-listens", body: Array("{}".utf8))
                ])
            } throws: { error in
                guard case .publishRejected = error as? AMQPError else { return false }
                return "\(error)".contains("NO_ROUTE")
            }
        }
    }

    @Test func aMessagePastTheDeliveryLimitIsDeadLettered() throws {
        _ = try TestBroker.withTopology(deliveryLimit: 2) { connection, topology throws in
            try connection.publish([
                OutgoingMessage(
                    exchange: topology.exchange, routingKey: topology.routingKey, body: Array("poison".utf8))
            ])
            // Delivered 3 times (the first plus 2 redeliveries), requeued each time, then dead-lettered.
            var deliveryCounts: [Int] = []
            for _ in 0..<3 {
                let message = try #require(try connection.get(from: topology.queue))
                deliveryCounts.append(message.deliveryCount)
                try connection.reject(message.deliveryTag, requeue: true)
            }
            #expect(deliveryCounts == [0, 1, 2])
            let dead = try #require(try waitForMessage(connection, queue: topology.deadLetterQueue))
            #expect(dead.body == Array("poison".utf8))
            try connection.ack(dead.deliveryTag)
            #expect(try connection.get(from: topology.queue) == nil)
        }
    }

    @Test func unreachableBrokerIsATransientError() {
        #expect {
            _ = try AMQPConnection(url: AMQPURL("amqp://guest:guest@127.0.0.1:1/"), timeout: 2)
        } throws: { error in
            (error as? AMQPError)?.isTransient == true && "\(error)".contains("127.0.0.1:1")
        }
    }

    @Test func wrongPasswordIsReported() {
        #expect {
            _ = try AMQPConnection(url: AMQPURL("amqp://guest:wrong@127.0.0.1:5672/"), timeout: 5)
        } throws: { error in
            "\(error)".contains("127.0.0.1:5672")
        }
    }

    private func waitForMessage(_ connection: AMQPConnection, queue: String) throws -> DeliveredMessage? {
        // Dead-lettering is asynchronous inside the broker.
        let deadline = Date().addingTimeInterval(30)
        repeat {
            if let message = try connection.get(from: queue) { return message }
            Thread.sleep(forTimeInterval: 0.02)
        } while Date() < deadline
        return nil
    }
}
