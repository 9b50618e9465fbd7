// Failpoints the system tests set through the environment: a task that crashes its worker, a worker that holds its
// model still while a file exists (so a signal or an outage reliably lands while tasks are in flight), and model
// steps made slower than a machine could make them (so a worker's timing of its tasks is known).

import Foundation
import Jobs
import Logging
import Worker

enum WorkerFailpoints {
    /// `INFMLLM_FAILPOINT_CRASH_ON_INPUT`: the process aborts when the model starts on a task with that input text,
    /// standing in for a task that crashes workers. `INFMLLM_FAILPOINT_HOLD_FILE`: before each model step, the worker
    /// waits while that file exists. `INFMLLM_FAILPOINT_STEP_DELAY_MS`: each model step waits that long first.
    static func hooks(_ environment: [String: String], logger: Logger) -> WorkerHooks {
        let crashOnInput = environment["INFMLLM_FAILPOINT_CRASH_ON_INPUT"]
        let holdFile = environment["INFMLLM_FAILPOINT_HOLD_FILE"]
        let stepDelay = environment["INFMLLM_FAILPOINT_STEP_DELAY_MS"].flatMap(Double.init).map { $0 / 1000 }
        return WorkerHooks(
            starting: { tasks in
                guard let crashOnInput, let task = tasks.first(where: { $0.inputText == crashOnInput }) else { return }
                logger.critical(
                    "failpoint INFMLLM_FAILPOINT_CRASH_ON_INPUT: aborting on task \(task.taskID)",
                    metadata: ["task": "\(task.taskID)", "job": "\(task.jobID)"])
                abort()
            },
            beforeStep: {
                if let stepDelay { Thread.sleep(forTimeInterval: stepDelay) }
                guard let holdFile else { return }
                var logged = false
                while FileManager.default.fileExists(atPath: holdFile) {
                    if !logged {
                        logger.info("failpoint INFMLLM_FAILPOINT_HOLD_FILE: holding while \(holdFile) exists")
                    }
                    logged = true
                    Thread.sleep(forTimeInterval: 0.02)
                }
            })
    }
}
