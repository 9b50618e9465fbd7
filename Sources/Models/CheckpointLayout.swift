// The one place that maps the released checkpoints' tensor names onto the networks' parts.

/// Name prefixes of a checkpoint's four parts.
public struct CheckpointLayout: Sendable, Equatable {
    /// EVA ViT tensors: `<vision>cls_token`, `<vision>blocks.0.attn.qkv.weight`, ...
    public var vision: String
    /// `ln_vision.weight` and `.bias`.
    public var lnVision: String
    /// The pool-adapter MLP: `<pooler>0.weight`, `<pooler>2.weight`.
    public var pooler: String
    /// LLaMA's body: `<language>embed_tokens.weight`, `<language>layers.0...`, `<language>norm.weight`.
    public var language: String
    public var lmHead: String

    /// InfMLLM-7B's names, from the module attributes of its inference class.
    public static let multitask = CheckpointLayout(
        vision: "visual_encoder.", lnVision: "ln_vision.", pooler: "pooler.mlp.", language: "lm_model.model.",
        lmHead: "lm_model.lm_head.weight")

    /// InfMLLM-7B-Chat's LLaVA-style names. The vision tower's inner names are not published; these are the
    /// candidates tried in order (the tower wrapping `visual_encoder`/`ln_vision`, or holding them directly).
    public static let chatCandidates = [
        CheckpointLayout(
            vision: "model.vision_tower.visual_encoder.", lnVision: "model.vision_tower.ln_vision.",
            pooler: "model.mm_projector.mlp.", language: "model.", lmHead: "lm_head.weight"),
        CheckpointLayout(
            vision: "model.vision_tower.", lnVision: "model.ln_vision.", pooler: "model.mm_projector.mlp.",
            language: "model.", lmHead: "lm_head.weight"),
        CheckpointLayout(
            vision: "model.vision_tower.vision_tower.", lnVision: "model.vision_tower.ln_vision.",
            pooler: "model.mm_projector.mlp.", language: "model.", lmHead: "lm_head.weight"),
    ]

    /// The layout whose key tensors are present, or an error listing what was expected and what was found.
    public static func detect(variant: ModelVariant, names: [String], directory: String) throws -> CheckpointLayout {
        let candidates = variant == .multitask ? [multitask] : chatCandidates
        let present = Set(names)
        if let layout = candidates.first(where: {
            present.contains($0.vision + "cls_token") && present.contains($0.lnVision + "weight")
                && present.contains($0.pooler + "0.weight") && present.contains($0.lmHead)
        }) {
            return layout
        }
        throw ModelError.unknownLayout(
            directory: directory,
            expected: candidates.flatMap {
                [$0.vision + "cls_token", $0.lnVision + "weight", $0.pooler + "0.weight", $0.lmHead]
            },
            found: names.sorted())
    }

    /// Buffers that carry no weights: LLaMA's rotary `inv_freq`, recomputed from the config.
    public static func isIgnored(_ name: String) -> Bool {
        name.hasSuffix("rotary_emb.inv_freq")
    }
}
