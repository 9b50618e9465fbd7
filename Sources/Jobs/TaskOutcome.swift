// How a task ended on a worker, and who produced its result.

/// How one task ended.
public struct TaskOutcome: Sendable {
    public enum Ending: Sendable {
        /// `logProbability`: the sum of the output tokens' log-probabilities under the model (nil when not finite,
        /// as `InferenceResult` gives it).
        case result(
            text: String, tokens: [Int], logProbability: Double?, promptTokenCount: Int, boxes: [GroundingBox],
            prompt: String, decodingJSON: String, timingsJSON: String)
        case failed(reason: String)
        /// Its image could not be read for a reason that may pass (a timeout, a lost connection, HTTP 5xx or 429):
        /// it is queued again, to be published `after` seconds from now, with the reason kept as its last error.
        case readLater(reason: String, after: Double)
    }

    public var taskID: Int64
    public var jobID: Int64
    public var ending: Ending
    public var imageSHA256: String?
    public var imageWidth: Int?
    public var imageHeight: Int?
    /// The image's Exif orientation tag (1 to 8; 1 when it has none), nil when the image was not read.
    public var imageOrientation: Int?

    public init(
        taskID: Int64, jobID: Int64, ending: Ending, imageSHA256: String? = nil, imageWidth: Int? = nil,
        imageHeight: Int? = nil, imageOrientation: Int? = nil
    ) {
        self.taskID = taskID
        self.jobID = jobID
        self.ending = ending
        self.imageSHA256 = imageSHA256
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.imageOrientation = imageOrientation
    }

    public var isResult: Bool {
        if case .result = ending { return true }
        return false
    }
}

/// Who produced a result.
public struct Provenance: Sendable, Equatable {
    public var modelName: String
    public var weightsSHA256: String
    public var device: String
    public var worker: String

    public init(modelName: String, weightsSHA256: String, device: String, worker: String) {
        self.modelName = modelName
        self.weightsSHA256 = weightsSHA256
        self.device = device
        self.worker = worker
    }
}
