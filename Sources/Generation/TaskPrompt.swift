// The prompt for each task and model variant, from the reference's templates (spec §5), with user overrides.

import Jobs
import Models

/// Prompt templates. `<ImageHere>` marks the image; `{question}` and `{expression}` the request's text.
public enum TaskPrompt {
    /// The image marker in every template and override.
    public static let imageMarker = "<ImageHere>"

    /// vicuna_v1's system sentence, which the chat model was tuned with.
    public static let chatSystem =
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        + "detailed, and polite answers to the user's questions."

    /// The default template of `task` for `variant`.
    ///
    /// Multitask: the released eval prompts for VQA and grounding; the caption prompt is not published, so this
    /// uses `<image><ImageHere>A short image caption:` (override with `--prompt`); chat is the early chat-stage
    /// prompt of the first code drop's MME script, for checkpoints in the multitask layout (`<image>` as text, a
    /// space after `ASSISTANT:`). Chat: the vicuna_v1 single-turn conversation, with LLaVA-1.5's task suffixes for
    /// VQA and grounding.
    public static func defaultTemplate(_ task: TaskKind, variant: ModelVariant) -> String {
        switch (variant, task) {
        case (.multitask, .caption): "<image><ImageHere>A short image caption:"
        case (.multitask, .vqa): "<image><ImageHere>Question:{question} Short answer:"
        case (.multitask, .ground): "<image><ImageHere><ref>{expression}</ref>"
        case (.multitask, .chat): "\(chatSystem) USER: <image><ImageHere>\n{question} ASSISTANT: "
        case (.chat, .chat): chat("{question}")
        case (.chat, .caption): chat("Provide a one-sentence caption for the provided image.")
        case (.chat, .vqa): chat("{question}\nAnswer the question using a single word or phrase.")
        case (.chat, .ground):
            chat("Please provide the bounding box coordinate of the region this sentence describes: {expression}")
        }
    }

    private static func chat(_ message: String) -> String {
        "\(chatSystem) USER: <ImageHere>\n\(message) ASSISTANT:"
    }

    /// The filled-in prompt. VQA questions for the multitask model are normalised as its QuestionProcessor does.
    /// The placeholders are the template's only: the request's text is put in as it is, never read for
    /// placeholders itself (a question about `{expression}` stays that), and must not hold the image marker (the
    /// prompt would be split at it, and the text after it lost).
    public static func render(template: String, task: TaskKind, variant: ModelVariant, text: String) throws
        -> String
    {
        guard template.components(separatedBy: imageMarker).count == 2 else {
            throw ModelError.badRequest("the prompt must contain \(imageMarker) exactly once: \(template)")
        }
        let input = task == .vqa && variant == .multitask ? processedQuestion(text) : text
        guard !input.contains(imageMarker) else {
            throw ModelError.badRequest(
                "the \(task == .ground ? "expression" : "question") contains \(imageMarker), which marks where the "
                    + "image goes in a prompt")
        }
        return template.components(separatedBy: "{question}").map {
            $0.replacingOccurrences(of: "{expression}", with: input)
        }.joined(separator: input)
    }

    /// Lower-case, drop `. ! " ( ) * # : ; ~`, strip trailing spaces, keep the first 50 words.
    public static func processedQuestion(_ question: String) -> String {
        let dropped = Set(".!\"()*#:;~")
        var text = String(question.lowercased().filter { !dropped.contains($0) })
        while text.last == " " { text.removeLast() }
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        return words.count > 50 ? words.prefix(50).joined(separator: " ") : text
    }
}
