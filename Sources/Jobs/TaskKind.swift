// The four things a task can ask of the model.

/// What a task asks the model to do. Raw values are the ones stored in `jobs.task_kind` and sent on the queue.
public enum TaskKind: String, Sendable, Codable, CaseIterable {
    /// Describe the image in a sentence.
    case caption
    /// Answer a short question about the image.
    case vqa
    /// Find the region a referring expression names and return its bounding box.
    case ground
    /// Answer in the conversational (chat model) style.
    case chat

    /// Whether a task of this kind carries text input (a question or an expression) besides the image.
    public var takesTextInput: Bool {
        switch self {
        case .caption: false
        case .vqa, .ground, .chat: true
        }
    }
}
