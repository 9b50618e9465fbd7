// The checkpoints and reference outputs made by tools/reference/engine_fixtures.py (PyTorch + transformers).

import CPUBackend
import Foundation
import Generation
import Imaging
import Jobs
import Models

struct EngineCases: Decodable {
    struct Request: Decodable {
        let image: String
        let task: String
        let text: String
    }

    struct Generation: Decodable {
        let settings: [String: Double]
        let rows: [Int]
        let ids: [[Int]]
        /// Each row's sum of its ids' log-probabilities (engine_cases.json; bf16_reference.json records none).
        let logprobs: [Double]?
    }

    struct Variant: Decodable {
        let variant: String
        let requests: [Request]
        let image_files: [String]
        let image_sizes: [[Int]]
        let prompt_ids: [[[Int]]]
        let vision_features: [[Float]]
        let pooled_grid: [[Float]]
        let visual_tokens: [[Float]]
        let prefill_logits: [[Float]]
        let generations: [Generation]
    }

    let transformers: String
    let multitask: Variant
    let chat: Variant
}

enum EngineFixtures {
    /// The exact mode every golden comparison runs in, and the fast mode.
    static let f32 = CPUBackend(precision: .f32, threads: 2)
    static let bf16 = CPUBackend(precision: .bf16, threads: 2)

    static let directory = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let imagesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ImagingTests/Fixtures/images")

    static let cases: EngineCases = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("engine_cases.json"))
        return try! JSONDecoder().decode(EngineCases.self, from: data)
    }()

    static func modelDirectory(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    /// The requests of `variant`, preprocessed as the model's variant prescribes.
    static func requests(_ variant: EngineCases.Variant, model: VisionLanguageModel, parameters: GenerationParameters)
        throws -> [InferenceRequest]
    {
        let decoder = ImageDecoder()
        return try variant.requests.map { request in
            let image = try decoder.decode(contentsOf: imagesDirectory.appendingPathComponent(request.image).path)
            return InferenceRequest(
                imageKey: request.image, image: model.preprocessor(image), task: TaskKind(rawValue: request.task)!,
                text: request.text, parameters: parameters)
        }
    }

    static func parameters(_ settings: [String: Double]) -> GenerationParameters {
        var parameters = GenerationParameters()
        if let value = settings["max_new_tokens"] { parameters.maxNewTokens = Int(value) }
        if let value = settings["min_new_tokens"] { parameters.minNewTokens = Int(value) }
        if let value = settings["num_beams"] { parameters.beamCount = Int(value) }
        if let value = settings["length_penalty"] { parameters.lengthPenalty = value }
        // The rules of the release that made the fixtures (their sequences never end with EOS, where the releases
        // differ; beam_cases_*.json cover that).
        parameters.beamRules = cases.transformers.hasPrefix("4.31.") ? .transformers431 : .transformers5
        return parameters
    }

    /// max |a - b| / max |b|: the relative error of a whole tensor.
    static func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        guard actual.count == expected.count else { return .infinity }
        let scale = expected.map(abs).max() ?? 1
        return zip(actual, expected).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-12) } ?? 0
    }
}
