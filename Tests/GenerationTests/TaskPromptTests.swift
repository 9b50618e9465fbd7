// Prompts filled in from their templates: the request's text goes in as it is, never read for placeholders, and a
// text holding the image marker is refused.

import Generation
import Jobs
import Models
import Testing

@Suite struct TaskPromptTests {
    @Test func placeholdersInTheRequestsTextStayAsTyped() throws {
        let chat = TaskPrompt.defaultTemplate(.vqa, variant: .chat)
        let question = "what does {expression} mean, and {question}?"
        let prompt = try TaskPrompt.render(template: chat, task: .vqa, variant: .chat, text: question)
        #expect(
            prompt.hasSuffix(
                "USER: <ImageHere>\n\(question)\nAnswer the question using a single word or phrase. ASSISTANT:"))
        let ground = TaskPrompt.defaultTemplate(.ground, variant: .multitask)
        #expect(
            try TaskPrompt.render(template: ground, task: .ground, variant: .multitask, text: "the {question} dog")
                == "<image><ImageHere><ref>the {question} dog</ref>")
        // A template may still use a placeholder several times.
        #expect(
            try TaskPrompt.render(
                template: "<ImageHere>{question} / {question}", task: .chat, variant: .chat, text: "why")
                == "<ImageHere>why / why")
    }

    /// The multitask layout's chat prompt is the first code drop's MME prompt (reference §5): `<image>` as plain
    /// text before the visual tokens, and a space after `ASSISTANT:`.
    @Test func theMultitaskChatPromptIsTheEarlyChatStagePrompt() throws {
        let template = TaskPrompt.defaultTemplate(.chat, variant: .multitask)
        let prompt = try TaskPrompt.render(template: template, task: .chat, variant: .multitask, text: "What is it?")
        #expect(
            prompt
                == "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                + "helpful, detailed, and polite answers to the user's questions. USER: <image><ImageHere>\nWhat is "
                + "it? ASSISTANT: ")
    }

    @Test(arguments: [
        (TaskKind.chat, ModelVariant.chat, "what is <ImageHere> here"), (.ground, .multitask, "a<ImageHere>b"),
        (.ground, .chat, "<ImageHere>"),
    ])
    func aTextHoldingTheImageMarkerIsRefused(_ task: TaskKind, _ variant: ModelVariant, _ text: String) {
        let template = TaskPrompt.defaultTemplate(task, variant: variant)
        #expect {
            try TaskPrompt.render(template: template, task: task, variant: variant, text: text)
        } throws: { "\($0)".contains("contains <ImageHere>") }
    }
}
