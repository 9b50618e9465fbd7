// What the worker decides for each task of a message, from the message and the rows alone.

import Jobs
import Testing

@testable import Worker

@Suite struct TriageTests {
    let triage = Triage(ownKey: "tiny", deliveryLimit: 2)

    func task(status: TaskStatus = .queued, attempts: Int = 0, model: String = "/models/tiny") -> TaskRow {
        TaskRow(
            taskID: 7, jobID: 1, imageURI: "a.jpg", status: status, taskKind: .caption, jobModel: model,
            attempts: attempts, worker: attempts > 0 ? "w1" : nil)
    }

    func delivery(deadLetter: Bool = false, redelivered: Bool = false, count: Int = 0, round: Int = 0) -> Delivery {
        Delivery(
            body: [], isDeadLetter: deadLetter, isRedelivery: redelivered, deliveryCount: count, round: round, tag: 1,
            connection: 1)
    }

    @Test func finishedGoneAndCancelledTasksNeedNoModel() {
        #expect(triage.decide(nil, delivery: delivery()) == .settled)
        #expect(triage.decide(task(status: .done), delivery: delivery()) == .settled)
        #expect(triage.decide(task(status: .cancelled), delivery: delivery()) == .settled)
        // A failed task published again without a retry (which sets it back to queued first) is a duplicate: a
        // poison task does not run again.
        #expect(triage.decide(task(status: .failed), delivery: delivery(redelivered: true)) == .settled)
        var cancelled = task()
        cancelled.jobCancelled = true
        #expect(triage.decide(cancelled, delivery: delivery()) == .cancel)
        // Waiting to read its image again, the task's message now is an old one (a redelivery of the message whose
        // read failed): its next is published when the time comes, and a read now would spend one early.
        var waiting = task()
        waiting.readRetries = 1
        waiting.waitsToRead = true
        #expect(triage.decide(waiting, delivery: delivery(redelivered: true)) == .settled)
        waiting.waitsToRead = false
        #expect(triage.decide(waiting, delivery: delivery()) == .run(alone: false), "its time has come")
    }

    @Test func aTaskDeliveredAgainAfterTheModelStartedOnItRunsAlone() {
        #expect(triage.decide(task(), delivery: delivery()) == .run(alone: false))
        #expect(triage.decide(task(), delivery: delivery(redelivered: true)) == .run(alone: false))
        #expect(triage.decide(task(status: .running, attempts: 1), delivery: delivery()) == .run(alone: false))
        #expect(
            triage.decide(task(status: .running, attempts: 1), delivery: delivery(redelivered: true))
                == .run(alone: true))
    }

    @Test func anotherModelsTaskGoesToItsQueue() {
        #expect(triage.decide(task(model: "other"), delivery: delivery()) == .forward(model: "other", round: 0))
    }

    @Test func deadLettersGoRoundAgainUntilTheModelStartedThemEachTimeOrThreeRoundsPassed() {
        let dead = delivery(deadLetter: true, count: 3)
        #expect(triage.decide(task(attempts: 1), delivery: dead) == .forward(model: "/models/tiny", round: 1))
        #expect(triage.decide(task(attempts: 2), delivery: dead) == .forward(model: "/models/tiny", round: 1))
        guard case let .fail(reason) = triage.decide(task(attempts: 3), delivery: dead) else {
            Issue.record("a task started on every delivery fails")
            return
        }
        #expect(reason.contains("dead-lettered after 3 deliveries") && reason.contains("last on worker w1"))
        guard case .fail = triage.decide(task(attempts: 0), delivery: delivery(deadLetter: true, round: 3)) else {
            Issue.record("after three rounds the task fails")
            return
        }
    }
}
