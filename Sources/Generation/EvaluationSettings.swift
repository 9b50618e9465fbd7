// The decoding settings of the released model's evaluation scripts, per task and model variant, with transformers
// 4.31's lengths as new tokens (`max_length` 30 is 29 new tokens, `min_length` 8 is 7: both count the dummy BOS).

import Jobs
import Models

/// A named starting point for decoding settings; flags and manifest fields given beside it override its values.
public enum DecodingPreset: String, Sendable, Codable, CaseIterable {
    /// Greedy decoding of at most 30 new tokens, whatever the task: the fastest.
    case greedy
    /// What the released evaluation scripts ran, for the task and the model variant.
    case evaluation

    public func parameters(_ task: TaskKind, variant: ModelVariant) -> GenerationParameters {
        switch self {
        case .greedy: GenerationParameters()
        case .evaluation: GenerationParameters.evaluation(task, variant: variant)
        }
    }
}

extension GenerationParameters {
    /// The evaluation scripts' settings for `task` on `variant`.
    ///
    /// InfMLLM-7B decodes with 5 beams (transformers 4.31's rules): VQA 10 new tokens with length_penalty 0 (OCR-VQA
    /// used 100); grounding and captions `max_length` 30 with length_penalty 1, captions also `min_length` 8; the
    /// chat task the early MME script's 100 new tokens with length_penalty 0. InfMLLM-7B-Chat decodes greedily: 128
    /// new tokens for captions, VQA and grounding (its benchmark loaders), 1,024 for chat (the demo, MM-Vet).
    public static func evaluation(_ task: TaskKind, variant: ModelVariant) -> GenerationParameters {
        var parameters = GenerationParameters()
        switch (variant, task) {
        case (.multitask, .vqa):
            (parameters.beamCount, parameters.maxNewTokens, parameters.lengthPenalty) = (5, 10, 0)
        case (.multitask, .ground):
            (parameters.beamCount, parameters.maxNewTokens, parameters.lengthPenalty) = (5, 29, 1)
        case (.multitask, .caption):
            (parameters.beamCount, parameters.maxNewTokens, parameters.lengthPenalty) = (5, 29, 1)
            parameters.minNewTokens = 7
        case (.multitask, .chat):
            (parameters.beamCount, parameters.maxNewTokens, parameters.lengthPenalty) = (5, 100, 0)
        case (.chat, .chat):
            parameters.maxNewTokens = 1024
        case (.chat, _):
            parameters.maxNewTokens = 128
        }
        parameters.beamRules = .transformers431
        return parameters
    }
}
