// Per-model routing names and which broker closures a worker recovers from.

import Testing

@testable import RabbitMQ

@Suite struct TaskTopologyTests {
    @Test(arguments: [
        ("InfMLLM-7B", "InfMLLM-7B"), ("/models/InfMLLM-7B", "InfMLLM-7B"), ("/models/InfMLLM-7B/", "InfMLLM-7B"),
        ("~/m/vicuna 7b v1.5", "vicuna_7b_v1.5"), ("tiny", "tiny"), ("", "_"), ("/", "_"), ("..", "_"),
        ("modèle", "mod_le"),
    ])
    func modelKeys(_ model: String, _ key: String) {
        #expect(TaskTopology.modelKey(model) == key)
    }

    @Test func eachModelHasItsQueueAndDeadLetterQueue() {
        let seven = TaskTopology(prefix: "p", model: "/models/InfMLLM-7B")
        let chat = TaskTopology(prefix: "p", model: "InfMLLM-7B-Chat")
        #expect(seven.queue == "p.model.InfMLLM-7B" && seven.routingKey == "InfMLLM-7B")
        #expect(chat.queue == "p.model.InfMLLM-7B-Chat")
        #expect(seven.exchange == chat.exchange && seven.deadLetterExchange == chat.deadLetterExchange)
        #expect(seven.deadLetterQueue == "p.dead.InfMLLM-7B" && chat.deadLetterQueue == "p.dead.InfMLLM-7B-Chat")
        #expect(seven.rejectedQueue == "p.tasks.rejected")
        #expect(TaskTopology(prefix: "p", model: "dead").queue != seven.deadLetterQueue)
        // Dead letters keep the model's key, which routes them to the model's own dead-letter queue.
        let routing = seven.queueArguments.first { $0.0 == "x-dead-letter-routing-key" }?.1
        #expect(routing == .string("InfMLLM-7B"))
        #expect(seven.deadLetterQueueArguments.contains { $0.0 == "x-delivery-limit" && $0.1 == .int(5) })
    }

    @Test func aConsumerTimeoutIsTransientOtherPreconditionFailuresAreNot() {
        let timeout = AMQPError.closedByBroker(
            operation: "consuming", code: 406,
            text: "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 3000 ms.")
        #expect(timeout.isConsumerTimeout && timeout.isTransient)
        let mismatch = AMQPError.closedByBroker(
            operation: "queue.declare", code: 406, text: "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit'")
        #expect(!mismatch.isConsumerTimeout && !mismatch.isTransient)
    }
}
