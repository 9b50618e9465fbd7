// config.json of an InfMLLM checkpoint directory: the variant, image and pool sizes, and the two networks.

import Foundation

/// Which InfMLLM release a checkpoint is, which fixes its tensor names, prompts and preprocessing.
public enum ModelVariant: String, Sendable, Codable {
    /// InfMLLM-7B (stage 2): `visual_encoder.*`, `lm_model.*`; prompts with `<ImageHere>`; stretched images.
    case multitask
    /// InfMLLM-7B-Chat (stage 3): `model.vision_tower.*`, `model.layers.*`; vicuna_v1 prompts; padded images.
    case chat
}

/// The EVA ViT-g settings (`config.json` → `vision`).
public struct VisionConfiguration: Sendable, Codable, Equatable {
    public var patchSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var layerNormEpsilon: Float

    enum CodingKeys: String, CodingKey {
        case patchSize = "patch_size", hiddenSize = "hidden_size", layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads", intermediateSize = "intermediate_size"
        case layerNormEpsilon = "layer_norm_eps"
    }

    public var headSize: Int { hiddenSize / headCount }
}

/// The LLaMA settings (`config.json` → `text`), with Hugging Face LlamaConfig key names.
public struct TextConfiguration: Sendable, Codable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int?
    public var rmsNormEpsilon: Float
    public var ropeTheta: Float?
    public var vocabularySize: Int
    public var maxPositionEmbeddings: Int
    public var bosTokenID: Int
    public var eosTokenID: Int
    public var padTokenID: Int?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads", kvHeadCount = "num_key_value_heads", rmsNormEpsilon = "rms_norm_eps"
        case ropeTheta = "rope_theta", vocabularySize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id", padTokenID = "pad_token_id"
    }

    public var resolvedKVHeadCount: Int { kvHeadCount ?? headCount }
    public var resolvedRopeTheta: Float { ropeTheta ?? 10_000 }
    /// LLaMA's pad is id 0 (`<unk>`) when the config names none.
    public var resolvedPadTokenID: Int { padTokenID ?? 0 }
    public var headSize: Int { hiddenSize / headCount }
}

/// A whole `config.json`.
public struct ModelConfiguration: Sendable, Codable, Equatable {
    public var modelType: String
    public var variant: ModelVariant
    /// The side S of the square input image.
    public var imageSize: Int
    /// P: the patch grid is block-averaged to P x P visual tokens.
    public var poolOutSize: Int
    public var vision: VisionConfiguration
    public var text: TextConfiguration
    /// `ln_vision`'s epsilon; PyTorch's LayerNorm default 1e-5 when absent.
    public var lnVisionEpsilon: Float?
    public var imageMean: [Float]?
    public var imageStd: [Float]?
    /// Overrides of the per-task prompt templates (`caption`, `vqa`, `ground`, `chat`).
    public var promptTemplates: [String: String]?
    /// LoRA's alpha, for checkpoints saved with adapters attached; nil means alpha = r.
    public var loraAlpha: Float?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", variant, imageSize = "image_size", poolOutSize = "pool_out_size", vision, text
        case lnVisionEpsilon = "ln_vision_eps", imageMean = "image_mean", imageStd = "image_std"
        case promptTemplates = "prompt_templates", loraAlpha = "lora_alpha"
    }

    public var resolvedLnVisionEpsilon: Float { lnVisionEpsilon ?? 1e-5 }
    /// g: patches per side.
    public var gridSize: Int { imageSize / vision.patchSize }
    /// Visual tokens per image, P².
    public var visualTokenCount: Int { poolOutSize * poolOutSize }

    /// Reads and checks `config.json`. A Hugging Face config.json without LLaMA's settings (InfMLLM-7B's) takes
    /// them from `languageDirectory`'s config.json (lmsys/vicuna-7b-v1.5's).
    public static func load(directory: String, languageDirectory: String? = nil) throws -> ModelConfiguration {
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.badConfiguration(file: path, reason: "missing or unreadable")
        }
        let configuration: ModelConfiguration
        do {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            if object["text"] == nil && object["vision"] == nil {
                configuration = try huggingFace(data, object: object, file: path, languageDirectory: languageDirectory)
            } else {
                configuration = try JSONDecoder().decode(ModelConfiguration.self, from: data)
            }
        } catch let error as ModelError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw ModelError.badConfiguration(
                file: path,
                reason: "missing key \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))")
        } catch {
            throw ModelError.badConfiguration(file: path, reason: "\(error)")
        }
        try configuration.validate(file: path)
        return configuration
    }

    /// EVA ViT-g/14 as both releases use it; a Hugging Face config.json does not spell these out.
    public static let evaViTG = VisionConfiguration(
        patchSize: 14, hiddenSize: 1408, layerCount: 39, headCount: 16, intermediateSize: 6144, layerNormEpsilon: 1e-6)

    /// A released model's Hugging Face config.json (whatever `model_type` it declares): LLaMA's keys at the top
    /// level, InfMLLM's `image_size`, `pool_out_size` and `mm_hidden_size` beside them. The vision encoder is
    /// EVA ViT-g (`infmllm_vision`, when present, overrides it for test checkpoints); image_size 448 and
    /// pool_out_size 16 when absent. `mm_hidden_size`, or "chat" in `model_type` or `architectures`, marks the chat
    /// model.
    static func huggingFace(_ data: Data, object: [String: Any], file: String, languageDirectory: String?) throws
        -> ModelConfiguration
    {
        let ownSettings = object["hidden_size"] != nil && object["num_hidden_layers"] != nil
        guard let textData = ownSettings ? data : try languageSettings(languageDirectory) else {
            throw ModelError.badConfiguration(
                file: file,
                reason: "neither this project's config.json (\"vision\" and \"text\") nor a Hugging Face one with "
                    + "LLaMA's settings (hidden_size, num_hidden_layers, ...); InfMLLM-7B's repository takes those from "
                    + "lmsys/vicuna-7b-v1.5: give its directory with --tokenizer DIR")
        }
        let decoder = JSONDecoder()
        let text = try decoder.decode(TextConfiguration.self, from: textData)
        var vision = evaViTG
        if let override = object["infmllm_vision"] {
            guard let settings = override as? [String: Any] else {
                throw ModelError.badConfiguration(file: file, reason: "infmllm_vision is not an object of settings")
            }
            vision = try decoder.decode(
                VisionConfiguration.self, from: JSONSerialization.data(withJSONObject: settings))
        } else if let width = object["mm_hidden_size"] as? Int {
            vision.hiddenSize = width
        }
        let declared = (object["model_type"] as? String ?? "").lowercased()
        let architectures = (object["architectures"] as? [String] ?? []).joined(separator: " ").lowercased()
        let chat = object["mm_hidden_size"] != nil || declared.contains("chat") || architectures.contains("chat")
        return ModelConfiguration(
            modelType: "infmllm", variant: chat ? .chat : .multitask, imageSize: object["image_size"] as? Int ?? 448,
            poolOutSize: object["pool_out_size"] as? Int ?? 16, vision: vision, text: text,
            lnVisionEpsilon: (object["ln_vision_eps"] as? Double).map(Float.init), imageMean: nil, imageStd: nil,
            promptTemplates: nil, loraAlpha: (object["lora_alpha"] as? Double).map(Float.init))
    }

    /// The bytes of `directory`'s config.json, when a directory is given.
    static func languageSettings(_ directory: String?) throws -> Data? {
        guard let directory else { return nil }
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.badConfiguration(file: path, reason: "missing or unreadable (the LLaMA settings)")
        }
        return data
    }

    /// Checks the relations the networks depend on.
    public func validate(file: String) throws {
        func require(_ condition: Bool, _ reason: String) throws {
            if !condition { throw ModelError.badConfiguration(file: file, reason: reason) }
        }
        try require(modelType == "infmllm", "model_type is \"\(modelType)\", expected \"infmllm\"")
        try require(
            imageSize > 0 && vision.patchSize > 0 && imageSize % vision.patchSize == 0,
            "image_size \(imageSize) is not a multiple of patch_size \(vision.patchSize)")
        try require(
            poolOutSize > 0 && gridSize % poolOutSize == 0,
            "the \(gridSize)x\(gridSize) patch grid does not divide into \(poolOutSize)x\(poolOutSize) pools")
        try require(
            vision.headCount > 0 && vision.hiddenSize % vision.headCount == 0, "vision heads do not divide hidden_size")
        try require(text.headCount > 0 && text.hiddenSize % text.headCount == 0, "text heads do not divide hidden_size")
        try require(text.headSize % 2 == 0, "the text head size must be even for rotary positions")
        try require(
            text.resolvedKVHeadCount > 0 && text.headCount % text.resolvedKVHeadCount == 0,
            "num_key_value_heads \(text.resolvedKVHeadCount) does not divide num_attention_heads \(text.headCount)")
        try require(
            vision.layerCount >= 0 && text.layerCount >= 0 && vision.hiddenSize > 0 && text.hiddenSize > 0
                && vision.intermediateSize > 0 && text.intermediateSize > 0 && text.vocabularySize > 0
                && text.maxPositionEmbeddings > 0,
            "layer counts must not be negative, and sizes (hidden, intermediate, vocabulary, positions) must be positive"
        )
        try require(imageMean.map { $0.count == 3 } ?? true, "image_mean needs 3 values")
        try require(imageStd.map { $0.count == 3 && !$0.contains(0) } ?? true, "image_std needs 3 non-zero values")
    }
}
