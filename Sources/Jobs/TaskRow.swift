// A task as a worker reads it: its row with its job's settings.

/// A task with what its job says about how to run it.
public struct TaskRow: Sendable, Equatable {
    public var taskID: Int64
    public var jobID: Int64
    public var imageURI: String
    public var inputText: String
    public var status: TaskStatus
    public var taskKind: TaskKind
    public var promptTemplate: String?
    /// The job's decoding parameters as stored (`jobs.generation`, JSON).
    public var generationJSON: String
    public var jobCancelled: Bool
    /// The model the task's job was enqueued for, as given to `enqueue --model`.
    public var jobModel: String
    /// How many times the model started on the task.
    public var attempts: Int
    /// The worker that last started it, if any.
    public var worker: String?
    /// Whether its job reuses earlier results for the same image content (`enqueue --skip-done`).
    public var reuseResults: Bool
    /// Its job's queue lane.
    public var priority: TaskPriority
    /// Times it was queued again because its image could not be read for a reason that may pass, and whether it
    /// waits for its time to read it again (a message of it delivered now is an old one: the next is published then).
    public var readRetries: Int
    public var waitsToRead: Bool

    public init(
        taskID: Int64, jobID: Int64, imageURI: String, inputText: String = "", status: TaskStatus = .queued,
        taskKind: TaskKind, promptTemplate: String? = nil, generationJSON: String = "{}", jobCancelled: Bool = false,
        jobModel: String, attempts: Int = 0, worker: String? = nil, reuseResults: Bool = false,
        priority: TaskPriority = .normal, readRetries: Int = 0, waitsToRead: Bool = false
    ) {
        self.priority = priority
        self.readRetries = readRetries
        self.waitsToRead = waitsToRead
        self.taskID = taskID
        self.jobID = jobID
        self.imageURI = imageURI
        self.inputText = inputText
        self.status = status
        self.taskKind = taskKind
        self.promptTemplate = promptTemplate
        self.generationJSON = generationJSON
        self.jobCancelled = jobCancelled
        self.jobModel = jobModel
        self.attempts = attempts
        self.worker = worker
        self.reuseResults = reuseResults
    }
}
