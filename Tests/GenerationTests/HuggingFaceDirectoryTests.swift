// A released model's directory as Hugging Face holds it (tools/reference/hf_chat_fixture.py: InfMLLMChatConfig
// keys, bf16 weights in two PyTorch shards with an index) loads directly, with the configuration derived from it.

import Foundation
import Generation
import Models
import Testing

@Suite struct HuggingFaceDirectoryTests {
    @Test func theChatReleaseLayoutLoadsDirectly() throws {
        let directory = EngineFixtures.modelDirectory("chat-hf")
        let derived = try ModelConfiguration.load(directory: directory)
        let ours = try ModelConfiguration.load(directory: EngineFixtures.modelDirectory("chat"))
        #expect(derived.variant == .chat && derived.text == ours.text && derived.vision == ours.vision)
        #expect(derived.imageSize == ours.imageSize && derived.poolOutSize == ours.poolOutSize)

        let inspection = try ModelInspection(directory: directory)
        #expect(inspection.layout == "chat-1" && inspection.configurationProblem == nil)
        #expect(inspection.files.map(\.format) == ["pytorch", "pytorch"])

        // The same weights rounded to bf16, as the release stores them: close to the f32 reference, same first token.
        let model = try VisionLanguageModel(directory: directory, backend: EngineFixtures.f32)
        let reference = EngineFixtures.cases.chat
        let logits = try FastModeTests.prefillLogits(model, reference: reference)
        for (row, expected) in reference.prefill_logits.enumerated() {
            let error = EngineFixtures.relativeError(logits[row], expected)
            #expect(error <= 0.05, "row \(row): \(error)")
            let argmax = logits[row].indices.max { logits[row][$0] < logits[row][$1] }
            let wanted = expected.indices.max { expected[$0] < expected[$1] }
            #expect(argmax == wanted, "row \(row)")
        }
    }

    @Test func aMultitaskConfigWithoutLLaMASettingsSaysWhereTheyComeFrom() throws {
        let directory = try CheckpointErrorTests.checkpoint { _ in }
        try #"{"architectures": ["InfMLLM_Inference_LLAMA"], "image_size": 448, "pool_out_size": 16}"#.write(
            toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        #expect {
            _ = try ModelConfiguration.load(directory: directory)
        } throws: { error in
            "\(error)".contains("config.json") && "\(error)".contains("vicuna-7b-v1.5")
        }
    }
}
