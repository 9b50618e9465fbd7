// Failpoints the system tests set through the environment: a task that crashes its worker, and a worker that holds
// its model still while a file exists (so a signal reliably lands while tasks are in flight).

import Foundation
import Jobs
import Logging
import Worker

enum WorkerFailpoints {
    /// `INFMLLM_FAILPOINT_CRASH_ON_INPUT`: the process aborts when the model starts on a task with that input text,
    /// standing in for a task that crashes workers. `INFMLLM_FAILPOINT_HOLD_FILE`: before each model step, the worker
    /// waits while that file exists.
    static func hooks(_ environment: [String: String], logger: Logger) -> WorkerHooks {
        let crashOnInput = environment["INFMLLM_FAILPOINT_CRASH_ON_INPUT"]
        let holdFile = environment["INFMLLM_FAILPOINT_HOLD_FILE"]
        return WorkerHooks(
            starting: { tasks in
                guard let crashOnInput, let task = tasks.first(where: { $0.inputText == crashOnInput }) else { return }
                logger.critical(
                    "failpoint INFMLLM_FAILPOINT_CRASH_ON_INPUT: aborting on task \(task.taskID)",
                    metadata: ["task": "\(task.taskID)", "job": "\(task.jobID)"])
                abort()
            },
            beforeStep: {
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
