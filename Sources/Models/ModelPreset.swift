// Random-weight checkpoints in the released layouts, for tests, demos and benchmarks: `infmllm model init`.

import Foundation
import Tensors

/// Sizes of a generated checkpoint.
public enum ModelPreset: String, Sendable, CaseIterable {
    /// A few thousand parameters: tests and the demo run it in milliseconds.
    case tiny
    /// Small enough to run on a laptop core, large enough for the kernels to dominate: CPU benchmarks.
    case bench
    /// The real InfMLLM-7B shapes (EVA ViT-g at 448 px, 256 visual tokens, LLaMA-7B), about 15.5 GB in bf16.
    case sevenB = "7b"
    /// The 7b widths (EVA ViT-g at 448 px, LLaMA-7B layers, the 32,000-token vocabulary) with only 3 vision blocks
    /// and 3 decoder layers: benchmarks of the real layer shapes in about 1.3 GB of bf16.
    case slice

    public func configuration(variant: ModelVariant) -> ModelConfiguration {
        switch self {
        case .tiny:
            ModelConfiguration(
                modelType: "infmllm", variant: variant, imageSize: 56, poolOutSize: 2,
                vision: VisionConfiguration(
                    patchSize: 14, hiddenSize: 32, layerCount: 2, headCount: 4, intermediateSize: 64,
                    layerNormEpsilon: 1e-6),
                text: TextConfiguration(
                    hiddenSize: 64, intermediateSize: 128, layerCount: 2, headCount: 4, kvHeadCount: 2,
                    rmsNormEpsilon: 1e-5,
                    ropeTheta: 10_000, vocabularySize: 1400, maxPositionEmbeddings: 512, bosTokenID: 1, eosTokenID: 2,
                    padTokenID: 0))
        case .bench:
            ModelConfiguration(
                modelType: "infmllm", variant: variant, imageSize: 224, poolOutSize: 8,
                vision: VisionConfiguration(
                    patchSize: 14, hiddenSize: 256, layerCount: 4, headCount: 4, intermediateSize: 1024,
                    layerNormEpsilon: 1e-6),
                text: TextConfiguration(
                    hiddenSize: 512, intermediateSize: 1376, layerCount: 4, headCount: 8, kvHeadCount: 8,
                    rmsNormEpsilon: 1e-5,
                    ropeTheta: 10_000, vocabularySize: 1400, maxPositionEmbeddings: 2048, bosTokenID: 1, eosTokenID: 2,
                    padTokenID: 0))
        case .slice:
            {
                var configuration = ModelPreset.sevenB.configuration(variant: variant)
                configuration.vision.layerCount = 3
                configuration.text.layerCount = 3
                return configuration
            }()
        case .sevenB:
            ModelConfiguration(
                modelType: "infmllm", variant: variant, imageSize: 448, poolOutSize: 16,
                vision: ModelConfiguration.evaViTG,
                text: TextConfiguration(
                    hiddenSize: 4096, intermediateSize: 11008, layerCount: 32, headCount: 32, kvHeadCount: 32,
                    rmsNormEpsilon: 1e-5,
                    ropeTheta: 10_000, vocabularySize: 32000, maxPositionEmbeddings: 4096, bosTokenID: 1, eosTokenID: 2,
                    padTokenID: 0))
        }
    }
}

/// Writes a checkpoint directory: config.json, model.safetensors and the repository's small tokenizer.model.
public enum CheckpointWriter {
    /// Every tensor of `configuration` under `layout`'s names, with its shape, in a stable order.
    public static func tensorShapes(_ configuration: ModelConfiguration, layout: CheckpointLayout) -> [(String, [Int])]
    {
        let v = configuration.vision, t = configuration.text, grid = configuration.gridSize
        let vh = v.hiddenSize, th = t.hiddenSize, kv = t.resolvedKVHeadCount * t.headSize
        var shapes: [(String, [Int])] = [
            (layout.vision + "cls_token", [1, 1, vh]), (layout.vision + "pos_embed", [1, 1 + grid * grid, vh]),
            (layout.vision + "patch_embed.proj.weight", [vh, 3, v.patchSize, v.patchSize]),
            (layout.vision + "patch_embed.proj.bias", [vh]),
        ]
        for index in 0..<v.layerCount {
            let p = "\(layout.vision)blocks.\(index)."
            shapes += [
                (p + "norm1.weight", [vh]), (p + "norm1.bias", [vh]), (p + "attn.qkv.weight", [3 * vh, vh]),
                (p + "attn.q_bias", [vh]), (p + "attn.v_bias", [vh]), (p + "attn.proj.weight", [vh, vh]),
                (p + "attn.proj.bias", [vh]), (p + "norm2.weight", [vh]), (p + "norm2.bias", [vh]),
                (p + "mlp.fc1.weight", [v.intermediateSize, vh]), (p + "mlp.fc1.bias", [v.intermediateSize]),
                (p + "mlp.fc2.weight", [vh, v.intermediateSize]), (p + "mlp.fc2.bias", [vh]),
            ]
        }
        shapes += [
            (layout.lnVision + "weight", [vh]), (layout.lnVision + "bias", [vh]),
            (layout.pooler + "0.weight", [th, vh]), (layout.pooler + "0.bias", [th]),
            (layout.pooler + "2.weight", [th, th]), (layout.pooler + "2.bias", [th]),
            (layout.language + "embed_tokens.weight", [t.vocabularySize, th]),
        ]
        for index in 0..<t.layerCount {
            let p = "\(layout.language)layers.\(index)."
            shapes += [
                (p + "input_layernorm.weight", [th]), (p + "self_attn.q_proj.weight", [th, th]),
                (p + "self_attn.k_proj.weight", [kv, th]), (p + "self_attn.v_proj.weight", [kv, th]),
                (p + "self_attn.o_proj.weight", [th, th]), (p + "post_attention_layernorm.weight", [th]),
                (p + "mlp.gate_proj.weight", [t.intermediateSize, th]),
                (p + "mlp.up_proj.weight", [t.intermediateSize, th]),
                (p + "mlp.down_proj.weight", [th, t.intermediateSize]),
            ]
        }
        shapes += [(layout.language + "norm.weight", [th]), (layout.lmHead, [t.vocabularySize, th])]
        return shapes
    }

    /// Writes a random checkpoint of `preset` to `directory` (created if missing).
    ///
    /// Values are deterministic in `seed`: weights ~ N(0, 0.02²), norm weights near 1, biases near 0,
    /// so the network is well conditioned and its outputs vary with the input.
    public static func write(
        preset: ModelPreset, variant: ModelVariant, seed: UInt64, dtype: DType, to directory: String
    ) throws -> ModelConfiguration {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let configuration = preset.configuration(variant: variant)
        let layout = variant == .multitask ? CheckpointLayout.multitask : CheckpointLayout.chatCandidates[0]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(configuration).write(
            to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("config.json")))
        try Data(PackageResources.tokenizer_model).write(
            to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("tokenizer.model")))
        let shapes = tensorShapes(configuration, layout: layout)
        var random = NormalSampler(seed: seed)
        try Safetensors.write(
            shapes.map { Safetensors.Header(name: $0.0, shape: $0.1, dtype: dtype) },
            to: (directory as NSString).appendingPathComponent("model.safetensors")
        ) { index in
            let (name, shape) = shapes[index]
            let count = shape.reduce(1, *)
            if name.hasSuffix("norm1.weight") || name.hasSuffix("norm2.weight") || name.hasSuffix("layernorm.weight")
                || name.hasSuffix("norm.weight") || name == layout.lnVision + "weight"
            {
                return (0..<count).map { _ in 1 + 0.1 * random.next() }
            }
            let scale: Float =
                name.hasSuffix("bias")
                ? 0.01 : (name.hasSuffix("pos_embed") || name.hasSuffix("cls_token") ? 0.5 : 0.02)
            return (0..<count).map { _ in scale * random.next() }
        }
        return configuration
    }
}

/// Standard normal samples from a seeded SplitMix64 (Box-Muller).
struct NormalSampler {
    var generator: SplitMix64
    var spare: Float?

    init(seed: UInt64) {
        generator = SplitMix64(seed: seed &+ 0x5DEE_CE66)
    }

    mutating func uniform() -> Double {
        (Double(generator.next() >> 11) + 0.5) / Double(1 << 53)
    }

    mutating func next() -> Float {
        if let spare {
            self.spare = nil
            return spare
        }
        let radius = (-2 * log(uniform())).squareRoot(), angle = 2 * Double.pi * uniform()
        spare = Float(radius * sin(angle))
        return Float(radius * cos(angle))
    }
}
