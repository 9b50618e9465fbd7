// Between task rows and the model: a task and its image become a model request (its job's decoding parameters
// checked), and the model's answer becomes the outcome the store records.

import Foundation
import Generation
import Jobs

enum TaskRequests {
    /// The model request for `task` on `image`: images are shared by content (their SHA-256), and the task samples
    /// from its own stream, so that it gives the same answer alone or beside any others.
    static func request(for task: TaskRow, image: ImagePipeline.Image) throws -> InferenceRequest {
        let parameters: GenerationParameters
        do {
            parameters = try JSONDecoder().decode(GenerationParameters.self, from: Data(task.generationJSON.utf8))
        } catch {
            throw GenerationError.badParameters("the job's decoding settings cannot be read: \(error)")
        }
        try parameters.validate()
        var request = InferenceRequest(
            imageKey: image.sha256, image: image.input, task: task.taskKind, text: task.inputText,
            promptTemplate: task.promptTemplate, parameters: parameters)
        request.imageSHA256 = image.sha256
        request.randomStream = UInt64(bitPattern: task.taskID)
        return request
    }

    /// The outcome of `task`: its result with the image's digest and size, or the reason it failed.
    static func outcome(
        _ task: TaskRow, image: ImagePipeline.Image?, request: InferenceRequest?, result: Result<InferenceResult, Error>
    ) -> TaskOutcome {
        switch result {
        case let .success(answer):
            var timings = answer.timings
            if let image { timings["decode_image"] = image.milliseconds }
            let decoding = (try? JSONEncoder().encode(request?.parameters)).map { String(decoding: $0, as: UTF8.self) }
            let timingsJSON = (try? JSONEncoder().encode(timings)).map { String(decoding: $0, as: UTF8.self) }
            return TaskOutcome(
                taskID: task.taskID, jobID: task.jobID,
                ending: .result(
                    text: answer.text, tokens: answer.tokens,
                    logProbability: answer.logProbability,
                    promptTokenCount: answer.promptTokenCount,
                    boxes: answer.boxes, prompt: answer.prompt, decodingJSON: decoding ?? "{}",
                    timingsJSON: timingsJSON ?? "{}"),
                imageSHA256: image?.sha256, imageWidth: image?.width, imageHeight: image?.height,
                imageOrientation: image?.orientation)
        case let .failure(error):
            return failure(task, "\(error)", image: image)
        }
    }

    /// The outcome of `task` whose image could not be read: queued again to read it later when the reason may pass
    /// and it has not been read again `readRetries` times yet (waiting `readRetryAfter` seconds, doubled for each
    /// earlier time), failed otherwise.
    static func unreadable(
        _ task: TaskRow, _ failure: ImagePipeline.ImageFailure, configuration: WorkerConfiguration
    ) -> TaskOutcome {
        guard failure.isTransient else { return Self.failure(task, failure.reason) }
        guard task.readRetries < configuration.readRetries else {
            let again = task.readRetries == 0 ? "" : " (read again \(task.readRetries) time(s) later, to no avail)"
            return Self.failure(task, failure.reason + again)
        }
        let after = configuration.readRetryAfter * pow(2, Double(min(task.readRetries, 30)))
        return TaskOutcome(
            taskID: task.taskID, jobID: task.jobID, ending: .readLater(reason: failure.reason, after: after))
    }

    static func failure(_ task: TaskRow, _ reason: String, image: ImagePipeline.Image? = nil) -> TaskOutcome {
        TaskOutcome(taskID: task.taskID, jobID: task.jobID, ending: .failed(reason: reason), imageSHA256: image?.sha256)
    }
}
