// Recording what ended: the outcomes of a round in one transaction, then each message whose last task that was is
// acknowledged. When the database refuses the round for good, outcomes are recorded one at a time and only the
// task whose result cannot be stored fails, with the database's reason.

import Foundation
import Jobs

extension InferenceWorker {
    /// Commits the outcomes gathered this round, counts them, and settles their tasks (acknowledging messages whose
    /// last task they were). Acknowledging only after the commit: a crash before it redelivers, and the commit is
    /// idempotent.
    func recordOutcomes() throws {
        guard !outcomes.isEmpty else { return }
        let recording = outcomes
        outcomes = []
        let unstorable = try record(recording.map(\.outcome))
        for (outcome, kind, reason) in recording {
            if unstorable.contains(outcome.taskID) {
                failed += 1
                metrics.taskEnded(kind: kind, outcome: "failed", reason: "storage")
            } else if outcome.isResult {
                completed += 1
                metrics.taskEnded(kind: kind, outcome: "done")
            } else if case .readLater = outcome.ending {
                deferred += 1
                metrics.taskReadLater(kind: kind)
            } else {
                failed += 1
                metrics.taskEnded(kind: kind, outcome: "failed", reason: reason)
            }
            settle(outcome.taskID)
        }
    }

    /// Commits `outcomes` in one transaction; when the database refuses them for good, one at a time.
    /// - Returns: the tasks whose results could not be stored and were recorded as failed instead.
    private func record(_ outcomes: [TaskOutcome]) throws -> Set<Int64> {
        do {
            try withStore("recording results", evenWhenStopping: true) {
                try $0.record(outcomes, provenance: provenance)
            }
            return []
        } catch  where !Backoff.isTransient(error) {
            log("the database refused \(outcomes.count) outcome(s) (\(error)); recording them one at a time")
            var unstorable: Set<Int64> = []
            for outcome in outcomes where try !recordAlone(outcome) { unstorable.insert(outcome.taskID) }
            return unstorable
        }
    }

    /// - Returns: false when the result could not be stored and a failure was recorded instead.
    private func recordAlone(_ outcome: TaskOutcome) throws -> Bool {
        do {
            try withStore("recording a result", evenWhenStopping: true) {
                try $0.record([outcome], provenance: provenance)
            }
            return true
        } catch  where !Backoff.isTransient(error) {
            if case .failed = outcome.ending { throw error }  // not even the failure can be stored
            logger.error(
                "task \(outcome.taskID): its result cannot be stored (\(error)); recording it as failed",
                metadata: ["task": "\(outcome.taskID)", "job": "\(outcome.jobID)"])
            let failure = TaskOutcome(
                taskID: outcome.taskID, jobID: outcome.jobID,
                ending: .failed(reason: "the result could not be stored: \(error)"), imageSHA256: outcome.imageSHA256)
            try withStore("recording a failure", evenWhenStopping: true) {
                try $0.record([failure], provenance: provenance)
            }
            return false
        }
    }
}
