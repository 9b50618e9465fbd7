// The Swift engine against PyTorch + transformers on the same random-weight checkpoints: activations within
// 1e-4 relative error, generated ids identical for greedy and beam search, batched equal to one at a time.

import Compute
import Generation
import Models
import Testing

@Suite struct EngineGoldenTests {
    static let variants: [(String, String)] = [
        ("multitask", "multitask"), ("multitask-sharded", "multitask"), ("chat", "chat"),
    ]

    static func fixture(_ variant: String) -> EngineCases.Variant {
        variant == "chat" ? EngineFixtures.cases.chat : EngineFixtures.cases.multitask
    }

    @Test(arguments: variants.map(\.0))
    func loadsEveryLayoutAndFormat(_ directory: String) throws {
        let model = try VisionLanguageModel(
            directory: EngineFixtures.modelDirectory(directory), backend: EngineFixtures.f32)
        #expect(model.configuration.visualTokenCount == 4)
    }

    @Test(arguments: variants)
    func visionFeaturesPooledTokensAndLogitsMatch(_ directory: String, _ variant: String) throws {
        try Self.checkActivations(directory, variant, backend: EngineFixtures.f32)
    }

    @Test(arguments: variants.filter { $0.0 != "multitask-sharded" })
    func generatedIDsMatchTransformers(_ directory: String, _ variant: String) throws {
        let mismatches = try Self.generationMismatches(directory, variant, backend: EngineFixtures.f32)
        #expect(mismatches.isEmpty, "\(mismatches.count) differ: \(mismatches.prefix(4))")
    }

    /// Vision features, pooled grid, visual tokens, prompt ids and prefill logits within 1e-4 of transformers.
    static func checkActivations(_ directory: String, _ variant: String, backend: any ComputeBackend) throws {
        let reference = Self.fixture(variant)
        let model = try VisionLanguageModel(directory: EngineFixtures.modelDirectory(directory), backend: backend)
        let engine = InferenceEngine(model: model)
        let requests = try EngineFixtures.requests(reference, model: model, parameters: GenerationParameters())
        let images = reference.image_files.map { file in requests.first { $0.imageKey == file }!.image }
        let features = model.vision(images.map(\.values))
        let perImage = features.count / images.count
        for (index, expected) in reference.vision_features.enumerated() {
            let actual = Array(features[(index * perImage)..<((index + 1) * perImage)])
            #expect(EngineFixtures.relativeError(actual, expected) <= 1e-4, "vision features of image \(index)")
        }
        let pooled = model.adapter.pooledGrid(model.adapter.normalized(features), imageCount: images.count)
        #expect(EngineFixtures.relativeError(pooled, reference.pooled_grid.flatMap { $0 }) <= 1e-4, "pooled grid")
        let visual = model.visualTokens(images)
        #expect(EngineFixtures.relativeError(visual, reference.visual_tokens.flatMap { $0 }) <= 1e-4, "visual tokens")

        let prompts = try requests.map(engine.prompt)
        #expect(prompts.map { [$0.before, $0.after] } == reference.prompt_ids, "prompt token ids")
        let logits = try engine.promptLogits(requests).flatMap { $0 }
        let vocabulary = model.configuration.text.vocabularySize
        for (row, expected) in reference.prefill_logits.enumerated() {
            let actual = Array(logits[(row * vocabulary)..<((row + 1) * vocabulary)])
            #expect(EngineFixtures.relativeError(actual, expected) <= 1e-4, "prefill logits of request \(row)")
        }
    }

    /// Every recorded generation (greedy and beam, batched and alone) run again; the ones whose ids differ, or whose
    /// sum of log-probabilities differs from transformers' by more than 1e-3 plus 1e-4 of it.
    static func generationMismatches(_ directory: String, _ variant: String, backend: any ComputeBackend) throws
        -> [String]
    {
        let reference = Self.fixture(variant)
        let model = try VisionLanguageModel(directory: EngineFixtures.modelDirectory(directory), backend: backend)
        let engine = InferenceEngine(model: model)
        var mismatches: [String] = []
        for generation in reference.generations {
            let parameters = EngineFixtures.parameters(generation.settings)
            let all = try EngineFixtures.requests(reference, model: model, parameters: parameters)
            let results = try engine.run(generation.rows.map { all[$0] })
            for (position, result) in results.enumerated() {
                let name = "\(generation.settings) rows \(generation.rows) #\(position)"
                if result.tokens != generation.ids[position] {
                    mismatches.append("\(name): got \(result.tokens), want \(generation.ids[position])")
                }
                guard let expected = generation.logprobs?[position] else {
                    mismatches.append("\(name): the fixture has no log-probability")
                    continue
                }
                guard let got = result.logProbability, abs(got - expected) <= 1e-3 + 1e-4 * abs(expected) else {
                    mismatches.append(
                        "\(name): log-probability \(String(describing: result.logProbability)), want \(expected)")
                    continue
                }
            }
        }
        return mismatches
    }
}
